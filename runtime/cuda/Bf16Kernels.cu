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

// The conversions are memory-bound: where both arrays allow it, a thread
// moves four values at once (a 16-byte float4 and an 8-byte quad of
// bf16), since 2-byte accesses leave most of each memory transaction
// unused; the rest, one at a time.
__device__ inline uint32_t packPair(float low, float high) {
  return uint32_t(moert::toBf16(low).bits) | uint32_t(moert::toBf16(high).bits)
                                                 << 16;
}
__device__ inline float lowOf(uint32_t pair) {
  return moert::toFloat(bf16{uint16_t(pair)});
}
__device__ inline float highOf(uint32_t pair) {
  return moert::toFloat(bf16{uint16_t(pair >> 16)});
}

__global__ void narrowKernel(const float *x, int64_t count, bool quads,
                             bf16 *y) {
  int64_t first = 0;
  if (quads) {
    first = count / 4 * 4;
    for (int64_t i : gridStride(count / 4)) {
      float4 v = reinterpret_cast<const float4 *>(x)[i];
      reinterpret_cast<uint2 *>(y)[i] =
          make_uint2(packPair(v.x, v.y), packPair(v.z, v.w));
    }
  }
  for (int64_t i : gridStride(count - first))
    y[first + i] = moert::toBf16(x[first + i]);
}

__global__ void widenKernel(const bf16 *x, int64_t count, bool quads,
                            float *y) {
  int64_t first = 0;
  if (quads) {
    first = count / 4 * 4;
    for (int64_t i : gridStride(count / 4)) {
      uint2 v = reinterpret_cast<const uint2 *>(x)[i];
      reinterpret_cast<float4 *>(y)[i] =
          make_float4(lowOf(v.x), highOf(v.x), lowOf(v.y), highOf(v.y));
    }
  }
  for (int64_t i : gridStride(count - first))
    y[first + i] = moert::toFloat(x[first + i]);
}

/// Whether the float array (16 bytes a quad) and the bf16 array (8) are
/// aligned for quads.
bool quadsFit(const void *floats, const void *halves) {
  return aligned16(floats) && reinterpret_cast<uintptr_t>(halves) % 8 == 0;
}

} // namespace

void moert::cuda::convert(const float *x, int64_t count, bf16 *y) {
  bool quads = quadsFit(x, y);
  narrowKernel<<<blocksFor(quads ? count / 4 : count), kThreads, 0, stream()>>>(
      x, count, quads, y);
  checkLaunch("moert::cuda::convert (to bf16)");
}

void moert::cuda::convert(const bf16 *x, int64_t count, float *y) {
  bool quads = quadsFit(y, x);
  widenKernel<<<blocksFor(quads ? count / 4 : count), kThreads, 0, stream()>>>(
      x, count, quads, y);
  checkLaunch("moert::cuda::convert (to f32)");
}
