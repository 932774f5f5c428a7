//===- LayoutKernels.cpp - CPU kernels of the last dimension's layout -----===//
//
// moe.slice, moe.pad, moe.concat and its gradient: row copies, one row per
// iteration of a parallel loop, so every element is written by one thread.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/RowMath.h"

#include <algorithm>

namespace {

/// Rows worth a parallel region: at least this many elements in all.
constexpr int64_t kGrain = 1 << 15;

} // namespace

void moert::cpu::slice(const float *x, int64_t rows, int64_t width,
                       int64_t offset, int64_t size, float *y) {
#pragma omp parallel for schedule(static) if (rows * size >= kGrain)
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(x + r * width + offset, size, y + r * size);
}

void moert::cpu::pad(const float *x, int64_t rows, int64_t size, int64_t offset,
                     int64_t width, float *y) {
#pragma omp parallel for schedule(static) if (rows * width >= kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    float *row = y + r * width;
    std::fill_n(row, offset, 0.0f);
    std::copy_n(x + r * size, size, row + offset);
    std::fill(row + offset + size, row + width, 0.0f);
  }
}

void moert::cpu::concat(const float *lhs, const float *rhs, int64_t rows,
                        int64_t heads, int64_t lhsHeads, int64_t lhsWidth,
                        int64_t rhsHeads, int64_t rhsWidth, float *y) {
  int64_t width = lhsWidth + rhsWidth;
#pragma omp parallel for schedule(static) if (rows * width >= kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t lhsRow = moert::rows::concatOperandRow(r, heads, lhsHeads);
    int64_t rhsRow = moert::rows::concatOperandRow(r, heads, rhsHeads);
    std::copy_n(lhs + lhsRow * lhsWidth, lhsWidth, y + r * width);
    std::copy_n(rhs + rhsRow * rhsWidth, rhsWidth, y + r * width + lhsWidth);
  }
}

namespace {

/// One operand's part of moe.concat's gradient: row `target` of `dPart`
/// sums the rows of dy that read it, in head order.
void concatPartGrad(const float *dy, int64_t rows, int64_t heads, int64_t width,
                    int64_t offset, int64_t partHeads, int64_t partWidth,
                    float *dPart) {
  int64_t reads = partHeads == heads ? 1 : heads;
  int64_t targets = rows / reads;
#pragma omp parallel for schedule(static) if (rows * partWidth >= kGrain)
  for (int64_t target = 0; target < targets; ++target) {
    float *row = dPart + target * partWidth;
    const float *first = dy + target * reads * width + offset;
    std::copy_n(first, partWidth, row);
    for (int64_t read = 1; read < reads; ++read) {
      const float *next = first + read * width;
#pragma omp simd
      for (int64_t j = 0; j < partWidth; ++j)
        row[j] += next[j];
    }
  }
}

} // namespace

void moert::cpu::concatGrad(const float *dy, int64_t rows, int64_t heads,
                            int64_t lhsHeads, int64_t lhsWidth,
                            int64_t rhsHeads, int64_t rhsWidth, float *dLhs,
                            float *dRhs) {
  int64_t width = lhsWidth + rhsWidth;
  concatPartGrad(dy, rows, heads, width, 0, lhsHeads, lhsWidth, dLhs);
  concatPartGrad(dy, rows, heads, width, lhsWidth, rhsHeads, rhsWidth, dRhs);
}
