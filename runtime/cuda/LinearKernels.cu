//===- LinearKernels.cu - the CUDA linear layers' GEMMs -------------------===//
//
// moe.linear and its gradients through cuBLAS, with f32 operands (pedantic
// math: the step equals the CPU's to f32 rounding) or bf16 ones (tensor
// cores, f32 accumulation; f32 results as the CPU's oneDNN matmul, or bf16
// ones that cuBLAS rounds as it stores them).
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"
#include "moert/Error.h"

#include "RowMajorGemm.h"
#include "Support.h"

#include <type_traits>

using namespace moert::cuda;

namespace {

__global__ void broadcastRows(const float *bias, int64_t rows, int64_t out,
                              float *y) {
  for (int64_t i : gridStride(rows * out))
    y[i] = bias[i % out];
}

template <typename T>
void linearWeightGradOf(const T *dy, const T *x, int64_t rows, int64_t in,
                        int64_t out, float *dWeight) {
  rowMajorGemm(true, false, out, in, rows, dy, out, x, in, 0.0f, dWeight, in,
               "moert::cuda::linearWeightGrad");
}

} // namespace

template <typename Operand, typename Result>
void moert::cuda::linear(const Operand *x, const Operand *weight,
                         const float *bias, int64_t rows, int64_t in,
                         int64_t out, Result *y) {
  // The bias is preloaded into y and the GEMM adds x W^T (beta 1), as on
  // the CPU; a bf16 result takes none (the verifier's rule).
  if constexpr (std::is_same_v<Result, float>) {
    if (bias && rows * out > 0) {
      broadcastRows<<<blocksFor(rows * out), kThreads, 0, stream()>>>(
          bias, rows, out, y);
      checkLaunch("moert::cuda::linear (bias)");
    }
  } else if (bias) {
    moert::fail("moert::cuda::linear: a bf16 result takes no bias");
  }
  rowMajorGemm(false, true, rows, out, in, x, in, weight, in,
               bias ? 1.0f : 0.0f, y, out, "moert::cuda::linear");
}
template void moert::cuda::linear(const float *, const float *, const float *,
                                  int64_t, int64_t, int64_t, float *);
template void moert::cuda::linear(const bf16 *, const bf16 *, const float *,
                                  int64_t, int64_t, int64_t, float *);
template void moert::cuda::linear(const bf16 *, const bf16 *, const float *,
                                  int64_t, int64_t, int64_t, bf16 *);

template <typename Operand, typename Result>
void moert::cuda::linearInputGrad(const Operand *dy, const Operand *weight,
                                  int64_t rows, int64_t in, int64_t out,
                                  Result *dx) {
  rowMajorGemm(false, false, rows, in, out, dy, out, weight, in, 0.0f, dx, in,
               "moert::cuda::linearInputGrad");
}
template void moert::cuda::linearInputGrad(const float *, const float *,
                                           int64_t, int64_t, int64_t, float *);
template void moert::cuda::linearInputGrad(const bf16 *, const bf16 *, int64_t,
                                           int64_t, int64_t, float *);
template void moert::cuda::linearInputGrad(const bf16 *, const bf16 *, int64_t,
                                           int64_t, int64_t, bf16 *);

void moert::cuda::linearWeightGrad(const float *dy, const float *x,
                                   int64_t rows, int64_t in, int64_t out,
                                   float *dWeight) {
  linearWeightGradOf(dy, x, rows, in, out, dWeight);
}
void moert::cuda::linearWeightGrad(const bf16 *dy, const bf16 *x, int64_t rows,
                                   int64_t in, int64_t out, float *dWeight) {
  linearWeightGradOf(dy, x, rows, in, out, dWeight);
}
