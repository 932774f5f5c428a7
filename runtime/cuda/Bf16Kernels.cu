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

/// f32 to bf16: a value, and a quad (a float4 to 4 bf16 in a uint2).
struct Narrow {
  using From = float;
  using To = bf16;
  using FromQuad = float4;
  using ToQuad = uint2;
  __device__ static To one(From x) { return moert::toBf16(x); }
  __device__ static ToQuad quad(FromQuad v) {
    return make_uint2(packPair(v.x, v.y), packPair(v.z, v.w));
  }
};
/// bf16 to f32, likewise.
struct Widen {
  using From = bf16;
  using To = float;
  using FromQuad = uint2;
  using ToQuad = float4;
  __device__ static To one(From x) { return moert::toFloat(x); }
  __device__ static ToQuad quad(FromQuad v) {
    return make_float4(lowOf(v.x), highOf(v.x), lowOf(v.y), highOf(v.y));
  }
};

template <typename Conversion>
__global__ void convertKernel(const typename Conversion::From *x, int64_t count,
                              bool quads, typename Conversion::To *y) {
  using FromQuad = typename Conversion::FromQuad;
  using ToQuad = typename Conversion::ToQuad;
  int64_t first = 0;
  if (quads) {
    first = count / 4 * 4;
    for (int64_t i : gridStride(count / 4))
      reinterpret_cast<ToQuad *>(y)[i] =
          Conversion::quad(reinterpret_cast<const FromQuad *>(x)[i]);
  }
  for (int64_t i : gridStride(count - first))
    y[first + i] = Conversion::one(x[first + i]);
}

/// Converts `count` values of x into y, by quads where both arrays are
/// aligned for them.
template <typename Conversion>
void launchConversion(const typename Conversion::From *x, int64_t count,
                      typename Conversion::To *y, const char *name) {
  bool quads =
      reinterpret_cast<uintptr_t>(x) % sizeof(typename Conversion::FromQuad) ==
          0 &&
      reinterpret_cast<uintptr_t>(y) % sizeof(typename Conversion::ToQuad) == 0;
  convertKernel<Conversion>
      <<<blocksFor(quads ? count / 4 : count), kThreads, 0, stream()>>>(
          x, count, quads, y);
  checkLaunch(name);
}

} // namespace

void moert::cuda::convert(const float *x, int64_t count, bf16 *y) {
  launchConversion<Narrow>(x, count, y, "moert::cuda::convert (to bf16)");
}

void moert::cuda::convert(const bf16 *x, int64_t count, float *y) {
  launchConversion<Widen>(x, count, y, "moert::cuda::convert (to f32)");
}
