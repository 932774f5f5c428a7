//===- Gemm.h - the GEMM of the CPU kernels ---------------------*- C++ -*-===//
//
// One row-major GEMM for every kernel, backed by oneDNN, whose JIT picks the
// widest instructions of the CPU it runs on (OpenBLAS 0.3.21 falls back to
// SSE3 kernels on CPUs newer than it knows): f32, and bf16 operands with an
// f32 result.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_GEMM_H
#define MOERT_CPU_GEMM_H

#include "moert/Bf16.h"

#include <cstdint>

namespace moert::cpu::detail {

/// c[m, n] = op(a) op(b) + beta * c, row-major; op transposes when asked.
/// Empty sizes are allowed (k == 0 gives beta * c). Outside an OpenMP
/// parallel region it uses every thread; inside one, only the caller's.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
          float *c, int64_t ldc);

/// The same with bf16 operands, accumulating in f32. It runs oneDNN's bf16
/// matmul primitive (one per shape and thread, kept) where the CPU has bf16
/// instructions (AVX-512 BF16 or AMX); elsewhere it widens the operands to
/// f32, exactly, and runs the f32 GEMM, which computes the same sums.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          const bf16 *a, int64_t lda, const bf16 *b, int64_t ldb, float beta,
          float *c, int64_t ldc);

/// The same with a dense bf16 result c[m, n] = op(a) op(b): the f32
/// accumulation rounded to nearest even as it is stored (through f32
/// scratch a block of rows at a time: the rounding a GPU's GEMM epilogue
/// does, which saves memory traffic there).
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
          const bf16 *a, int64_t lda, const bf16 *b, int64_t ldb, bf16 *c);

/// The same for an expert's GEMMs, whose m or k is the expert's row count,
/// which changes from step to step. oneDNN compiles a bf16 primitive per
/// shape (0.3 ms each, thousands of them over the first hundreds of steps),
/// so the bf16 one splits m into a multiple of 16 and a remainder (two
/// products) and zero-pads k to a multiple of 16 (in thread-local scratch):
/// a few dozen shapes then serve every count. The f32 one is gemm.
void expertGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                const float *a, int64_t lda, const float *b, int64_t ldb,
                float beta, float *c, int64_t ldc);
void expertGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                const bf16 *a, int64_t lda, const bf16 *b, int64_t ldb,
                float beta, float *c, int64_t ldc);

/// Whether bf16 GEMMs run oneDNN's bf16 matmul (not widened to f32); the
/// first call says on stderr when they do not.
bool hasBf16Matmul();

} // namespace moert::cpu::detail

#endif // MOERT_CPU_GEMM_H
