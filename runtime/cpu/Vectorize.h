//===- Vectorize.h - wide registers for the CPU kernels ---------*- C++ -*-===//
//
// The runtime builds for baseline x86-64 (SSE2), so that one binary runs on
// any machine. The memory- and exp-bound kernels are compiled once per
// instruction set with GCC's target clones, picked at load time; GCC's
// generic vectors lower to each clone's widest registers (4 SSE, 2 AVX2 or 1
// AVX-512 register per 16 lanes).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_VECTORIZE_H
#define MOERT_CPU_VECTORIZE_H

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && !defined(__clang__)
#define MOERT_CLONES                                                           \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MOERT_CLONES
#endif

// Helpers of the clones must be inlined into each to get its registers.
#define MOERT_INLINE __attribute__((always_inline)) inline
#define MOERT_LAMBDA_INLINE __attribute__((always_inline))

namespace moert::cpu::detail {

typedef float Floats __attribute__((vector_size(64)));
typedef int32_t Ints __attribute__((vector_size(64)));
constexpr int64_t kLanes = sizeof(Floats) / sizeof(float);
static_assert(kLanes == 16, "the halves' shuffles below pick 8 of 16 lanes");
/// Half of Floats: one AVX2 register.
typedef float HalfFloats __attribute__((vector_size(sizeof(Floats) / 2)));

/// Whether the x86-64-v4 clones run, where Floats is one AVX-512 register.
#if defined(__x86_64__) && !defined(__clang__)
inline const bool kVectorInOneRegister = [] {
  __builtin_cpu_init(); // this may run before libgcc's constructor
  return __builtin_cpu_supports("x86-64-v4") != 0;
}();
#else
inline const bool kVectorInOneRegister = false;
#endif

/// Whether this CPU has AVX-512 BF16: the bf16 dot product of
/// PairedBf16Gemm.h and the rounding conversion of moert::cpu::convert.
bool hasAvx512Bf16();

/// Returns body(std::bool_constant<kVectorInOneRegister>()), for code that
/// compiles best differently on AVX2 and AVX-512: each clone compiles its
/// loop both ways and runs the one its registers want. (A branch inside
/// the loop made GCC keep the AVX2 clone's vectors in memory, 4x slower.)
template <typename Body> MOERT_INLINE auto withRegisterWidth(Body body) {
  if (kVectorInOneRegister)
    return body(std::true_type());
  return body(std::false_type());
}

/// The low and high halves of x. (Vectors are passed by reference here and
/// below: returning one would change the ABI between the clones.)
MOERT_INLINE void splitHalves(const Floats &x, HalfFloats &low,
                              HalfFloats &high) {
  low = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7);
  high = __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Stores the kLanes lanes of x at `to`. GCC 12 moves a vector wider than
/// the target's registers to memory (or adds it to one kept across loop
/// iterations) through the stack and general registers: the AVX2 clone of
/// softmax's exp-and-sum ran half as fast so. Halves split by a shuffle
/// stay in registers.
MOERT_INLINE void storeFloats(float *to, const Floats &x) {
  HalfFloats low, high;
  splitHalves(x, low, high);
  std::memcpy(to, &low, sizeof(low));
  std::memcpy(to + kLanes / 2, &high, sizeof(high));
}

/// x <- exp(x): Cephes' expf polynomial (within 2 ulp), with x clamped to
/// [-87, 88] so that 2^n stays a normal float; NaN stays NaN. The clamp
/// compiles per register width (withRegisterWidth gives kOneRegister).
template <bool kOneRegister> MOERT_INLINE void expInPlace(Floats &x) {
  if constexpr (kOneRegister) {
    // The AVX2 way below stalls AVX-512: reloading two half stores as one
    // register took 4/5 of the SwiGLU's time.
    Floats low = Floats{} - 87.0f, high = Floats{} + 88.0f;
    x = x < low ? low : x;
    x = x > high ? high : x;
  } else {
    // On halves: GCC compares and selects a vector wider than the target's
    // registers one lane at a time (all of the AVX2 clone's exps were
    // scalar), and a half is an AVX2 register.
    HalfFloats halves[2];
    std::memcpy(halves, &x, sizeof(x));
    for (HalfFloats &half : halves) {
      HalfFloats low = HalfFloats{} - 87.0f, high = HalfFloats{} + 88.0f;
      half = half < low ? low : half;
      half = half > high ? high : half;
    }
    std::memcpy(&x, halves, sizeof(x));
  }
  // Adding 1.5 * 2^23 rounds to an integer n, which lands in the low bits.
  const float magic = 12582912.0f;
  Floats t = x * 1.44269504088896341f + magic, n = t - magic;
  Floats r = x - n * 0.693359375f - n * -2.12194440e-4f;
  Floats p = Floats{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  Ints scale = ((Ints)t - (0x4B400000 - 127)) << 23; // 2^n
  x = p * (Floats)scale;
}

typedef uint32_t Words __attribute__((vector_size(sizeof(Floats))));
typedef uint16_t Halves __attribute__((vector_size(sizeof(Floats) / 2)));

/// moert::toBf16 of every lane (to nearest even, NaN kept quiet), as bits.
MOERT_INLINE void toBf16(const Floats &x, Halves &result) {
  Words bits = (Words)x;
  Words rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  Words quietNaN = (bits >> 16) | 0x40u;
  // NaN: a magnitude above infinity's, so infinity's minus it is negative;
  // its sign bit, shifted across, selects. GCC compared (and chose with
  // `?:`) the 16 lanes one at a time on AVX2, 5x slower than memory.
  Ints magnitude = (Ints)(bits & 0x7fffffffu);
  Words isNaN = (Words)((0x7f800000 - magnitude) >> 31);
  result =
      __builtin_convertvector((isNaN & quietNaN) | (~isNaN & rounded), Halves);
}

/// moert::toFloat of every lane.
MOERT_INLINE void fromBf16(const Halves &x, Floats &result) {
  result = (Floats)(__builtin_convertvector(x, Words) << 16);
}

} // namespace moert::cpu::detail

#endif // MOERT_CPU_VECTORIZE_H
