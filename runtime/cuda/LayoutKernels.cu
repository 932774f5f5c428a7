//===- LayoutKernels.cu - CUDA kernels of the last dimension's layout -----===//
//
// moe.slice, moe.pad, moe.concat and its gradient as grid-stride loops over
// the elements they write: each element is written by one thread, and a
// gradient summed over heads is summed in head order, as on the CPU.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"
#include "moert/RowMath.h"

#include "Support.h"

using namespace moert::cuda;

namespace {

__global__ void sliceKernel(const float *x, int64_t rows, int64_t width,
                            int64_t offset, int64_t size, float *y) {
  for (int64_t i : gridStride(rows * size))
    y[i] = x[i / size * width + offset + i % size];
}

__global__ void padKernel(const float *x, int64_t rows, int64_t size,
                          int64_t offset, int64_t width, float *y) {
  for (int64_t i : gridStride(rows * width)) {
    int64_t column = i % width - offset;
    y[i] = column >= 0 && column < size ? x[i / width * size + column] : 0.0f;
  }
}

__global__ void concatKernel(const float *lhs, const float *rhs, int64_t rows,
                             int64_t heads, int64_t lhsHeads, int64_t lhsWidth,
                             int64_t rhsHeads, int64_t rhsWidth, float *y) {
  int64_t width = lhsWidth + rhsWidth;
  for (int64_t i : gridStride(rows * width)) {
    int64_t row = i / width, column = i % width;
    y[i] = column < lhsWidth
               ? lhs[moert::rows::concatOperandRow(row, heads, lhsHeads) *
                         lhsWidth +
                     column]
               : rhs[moert::rows::concatOperandRow(row, heads, rhsHeads) *
                         rhsWidth +
                     column - lhsWidth];
  }
}

/// One operand's part of the gradient, as moert::cpu's concatPartGrad.
__global__ void concatPartGradKernel(const float *dy, int64_t rows,
                                     int64_t heads, int64_t width,
                                     int64_t offset, int64_t partHeads,
                                     int64_t partWidth, float *dPart) {
  int64_t reads = partHeads == heads ? 1 : heads;
  for (int64_t i : gridStride(rows / reads * partWidth)) {
    const float *first =
        dy + i / partWidth * reads * width + offset + i % partWidth;
    float sum = first[0];
    for (int64_t read = 1; read < reads; ++read)
      sum += first[read * width];
    dPart[i] = sum;
  }
}

} // namespace

void moert::cuda::slice(const float *x, int64_t rows, int64_t width,
                        int64_t offset, int64_t size, float *y) {
  sliceKernel<<<blocksFor(rows * size), kThreads, 0, stream()>>>(
      x, rows, width, offset, size, y);
  checkLaunch("moert::cuda::slice");
}

void moert::cuda::pad(const float *x, int64_t rows, int64_t size,
                      int64_t offset, int64_t width, float *y) {
  padKernel<<<blocksFor(rows * width), kThreads, 0, stream()>>>(
      x, rows, size, offset, width, y);
  checkLaunch("moert::cuda::pad");
}

void moert::cuda::concat(const float *lhs, const float *rhs, int64_t rows,
                         int64_t heads, int64_t lhsHeads, int64_t lhsWidth,
                         int64_t rhsHeads, int64_t rhsWidth, float *y) {
  concatKernel<<<blocksFor(rows * (lhsWidth + rhsWidth)), kThreads, 0,
                 stream()>>>(lhs, rhs, rows, heads, lhsHeads, lhsWidth,
                             rhsHeads, rhsWidth, y);
  checkLaunch("moert::cuda::concat");
}

void moert::cuda::concatGrad(const float *dy, int64_t rows, int64_t heads,
                             int64_t lhsHeads, int64_t lhsWidth,
                             int64_t rhsHeads, int64_t rhsWidth, float *dLhs,
                             float *dRhs) {
  int64_t width = lhsWidth + rhsWidth;
  concatPartGradKernel<<<blocksFor(rows * lhsWidth), kThreads, 0, stream()>>>(
      dy, rows, heads, width, 0, lhsHeads, lhsWidth, dLhs);
  concatPartGradKernel<<<blocksFor(rows * rhsWidth), kThreads, 0, stream()>>>(
      dy, rows, heads, width, lhsWidth, rhsHeads, rhsWidth, dRhs);
  checkLaunch("moert::cuda::concatGrad");
}
