//===- Bf16Kernels.cu - f32 <-> bf16 conversions on the GPU ---------------===//
//
// arith.truncf and arith.extf: rounding is moert::toBf16's (to nearest
// even, NaN kept), the function the CPU kernels and the interpreter use, so
// the three give the same bits.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"

#include "Support.h"

using namespace moert::cuda;
using moert::bf16;

namespace {

__global__ void narrowKernel(const float *x, int64_t count, bf16 *y) {
  for (int64_t i : gridStride(count))
    y[i] = moert::toBf16(x[i]);
}

__global__ void widenKernel(const bf16 *x, int64_t count, float *y) {
  for (int64_t i : gridStride(count))
    y[i] = moert::toFloat(x[i]);
}

} // namespace

void moert::cuda::convert(const float *x, int64_t count, bf16 *y) {
  narrowKernel<<<blocksFor(count), kThreads, 0, stream()>>>(x, count, y);
  checkLaunch("moert::cuda::convert (to bf16)");
}

void moert::cuda::convert(const bf16 *x, int64_t count, float *y) {
  widenKernel<<<blocksFor(count), kThreads, 0, stream()>>>(x, count, y);
  checkLaunch("moert::cuda::convert (to f32)");
}
