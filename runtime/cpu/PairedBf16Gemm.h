//===- PairedBf16Gemm.h - small GEMMs on bf16 dot products ------*- C++ -*-===//
//
// AVX-512 BF16's dot product (vdpbf16ps) multiplies two pairs of bf16
// values and adds both products to an f32 lane: twice the multiply-adds of
// an f32 FMA per instruction, on operands half the size. Its operands are
// pairs of consecutive k, so the operands of these GEMMs are stored as pairs
// along k: A's pair (i, p) is A(i, 2p), A(i, 2p + 1) at a + i * lda + 2p,
// B's pair (p, j) is B(2p, j), B(2p + 1, j) at b + p * ldb + 2j. A
// row-major bf16 matrix is already pairs along its columns; the pack
// helpers below lay out the others. AMX's tiles take the same layout
// (PairedBf16GemmTiles.cpp). The products are exact in f32 and sum in f32,
// as a bf16 GEMM with f32 accumulation does (in pairs, with bf16
// subnormals read as zero).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_PAIREDBF16GEMM_H
#define MOERT_CPU_PAIREDBF16GEMM_H

#include "moert/Bf16.h"

#include <cstdint>

namespace moert::cpu::detail {

/// C[m x n] = A[m x 2 pairs] B[2 pairs x n] (+ C if accumulate), C
/// row-major f32 with leading dimension ldc.
struct PairedGemm {
  int64_t m, n, pairs;
  const bf16 *a;
  int64_t lda;
  const bf16 *b;
  int64_t ldb;
  float *c;
  int64_t ldc;
  bool accumulate;
};

/// Runs g on AMX tiles where hasAmxBf16(), else on AVX-512 vectors; only
/// where hasAvx512Bf16() (Vectorize.h).
void pairedGemm(const PairedGemm &g);

/// Runs g on AVX-512 BF16's dot products; only where hasAvx512Bf16().
void pairedGemmOnVectors(const PairedGemm &g);

/// Runs g's whole 16 x 16 tiles on AMX and its other rows and columns on
/// vectors; only where hasAmxBf16(). The sums' order is not the vectors'.
void pairedGemmOnTiles(const PairedGemm &g);

/// Whether the CPU has AMX with bf16 and the OS lets this process use it.
bool hasAmxBf16();

/// out + p * 2 * outRows + 2r holds the pair x(r, 2p), x(r, 2p + 1) for r <
/// rows and zeros for rows <= r < outRows: B = x^T, for a product A x^T (x
/// is rows x cols, cols even, rows ldx apart).
void pairColumns(const bf16 *x, int64_t ldx, int64_t rows, int64_t cols,
                 int64_t outRows, bf16 *out);

/// out + q * 2 * cols + 2c holds the pair x(2q, c), x(2q + 1, c), with
/// zeros for rows <= 2q + e < 2 * pairs: B = x, for a product A x (x is
/// rows x cols, rows ldx apart).
void pairRows(const bf16 *x, int64_t ldx, int64_t rows, int64_t cols,
              int64_t pairs, bf16 *out);

/// out + c * 2 * pairs + 2q holds the pair x(2q, c), x(2q + 1, c), with
/// zeros for rows <= 2q + e < 2 * pairs: A = x^T, for a product x^T B (x is
/// rows x cols, rows ldx apart).
void pairRowsTransposed(const bf16 *x, int64_t ldx, int64_t rows, int64_t cols,
                        int64_t pairs, bf16 *out);

} // namespace moert::cpu::detail

#endif // MOERT_CPU_PAIREDBF16GEMM_H
