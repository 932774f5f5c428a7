//===- RowMajorGemm.h - row-major GEMMs through cuBLAS ----------*- C++ -*-===//
//
// The step's tensors are row-major and cuBLAS is column-major: a row-major
// C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so every call
// swaps the operands. The linear layers and the grouped GEMM's cuBLAS
// kernel share this one translation. Internal to moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_ROWMAJORGEMM_H
#define MOERT_CUDA_ROWMAJORGEMM_H

#include <cstdint>

namespace moert::cuda {

/// The products of one call: `count` of them, the operands of each the
/// previous one's plus these strides (elements).
struct GemmBatch {
  int64_t count = 1;
  int64_t strideA = 0, strideB = 0, strideC = 0;
};

/// Row-major C [m x n] = op(A) op(B) + beta C for each product of `batch`,
/// with op(X) = X^T where transposed and beta 0 or 1 (1: a preloaded bias or
/// a sum of terms). Operands f32 (pedantic f32 math, no TF32) or bf16
/// (tensor cores, f32 accumulation); C f32, or bf16 over bf16 operands
/// (rounded as cuBLAS stores it). k == 0 gives C = beta C. `what` names the
/// call in errors.
template <typename T, typename Result>
void rowMajorGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
                  const T *a, int64_t lda, const T *b, int64_t ldb, float beta,
                  Result *c, int64_t ldc, const char *what,
                  GemmBatch batch = {});

} // namespace moert::cuda

#endif // MOERT_CUDA_ROWMAJORGEMM_H
