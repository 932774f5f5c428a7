//===- NormalFill.cpp - f32 initial values of normal streams, vectorized --===//
//
// float(scale * normalAt(key, i)) for a range of i, bit for bit, many times
// faster than the scalar path, whose log1p and cos calls dominate the start
// of a large model. Lanes of generic vectors compute log and cos with
// fdlibm's polynomials (within about 1 ulp of the correctly rounded values
// that glibc's functions return), so the double product differs from the
// scalar one by a relative 1e-14 at most. Its rounding to float is then the
// same unless the value lies that close to the midpoint of two floats; such
// a value (about one in two million) is recomputed by the scalar path.
//
//===----------------------------------------------------------------------===//

#include "moert/Random.h"

#include "cpu/Vectorize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace {

typedef double Doubles __attribute__((vector_size(64)));
typedef uint64_t Words64 __attribute__((vector_size(64)));
typedef int64_t Ints64 __attribute__((vector_size(64)));
typedef float Floats8 __attribute__((vector_size(32)));
typedef int32_t Ints32x8 __attribute__((vector_size(32)));
constexpr int kLanes = sizeof(Doubles) / sizeof(double);

/// A bound on |fast - scalar| / |value| (the scalar path's log1p and cos
/// are within 1 ulp, these within 1-2 ulp; the products add a few).
constexpr double kRelativeError = 1e-14;

// Vectors are passed by reference: returning one would change the ABI
// between the target clones.

MOERT_INLINE void mix64(Words64 &value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  value ^= value >> 31;
}

/// Selects lanes of `a` where `mask` is all ones, else of `b` (bitwise: GCC
/// lowers `?:` on these wide vectors lane by lane for AVX2).
MOERT_INLINE void select(Ints64 mask, const Doubles &a, Doubles &b) {
  b = (Doubles)(((Ints64)a & mask) | ((Ints64)b & ~mask));
}

/// Exact conversions without AVX-512's int64 <-> double instructions: a
/// small integer in the low mantissa bits of 1.5 * 2^52.
constexpr double kMagic = 0x1.8p52;
MOERT_INLINE void toDoubles(Ints64 small, Doubles &result) {
  result = (Doubles)(small + (Ints64)(Doubles{} + kMagic)) - kMagic;
}

MOERT_INLINE void uniformAt(uint64_t key, Words64 index, Doubles &uniform) {
  mix64(index);
  Words64 bits = key + index;
  mix64(bits);
  // The top 53 bits times 2^-53: the top 52 as the mantissa of [1, 2), and
  // the 53rd added (both steps exact).
  Doubles top52 = (Doubles)((bits >> 12) | 0x3ff0000000000000ULL) - 1.0;
  Words64 bit53 =
      (Words64)(-(Ints64)((bits >> 11) & 1)) & 0x3ca0000000000000ULL;
  uniform = top52 + (Doubles)bit53; // 2^-53 or 0
}

/// y <- log(y) for y in (0, 1], normal: fdlibm's e_log.c without special
/// cases.
MOERT_INLINE void logInPlace(Doubles &y) {
  const double ln2Hi = 6.93147180369123816490e-01,
               ln2Lo = 1.90821492927058770002e-10;
  const double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01,
               lg3 = 2.857142874366239149e-01, lg4 = 2.222219843214978396e-01,
               lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
               lg7 = 1.479819860511658591e-01;
  // y > 0: logical shifts (AVX2 has no 64-bit arithmetic shift).
  Ints64 bits = (Ints64)y;
  Ints64 high = (Ints64)((Words64)bits >> 32);
  Ints64 k = (Ints64)((Words64)high >> 20) - 1023;
  Ints64 mantissa = high & 0x000fffff;
  // Scale the mantissa into [sqrt(2)/2, sqrt(2)).
  Ints64 i = (mantissa + 0x95f64) & 0x100000;
  Ints64 newHigh = mantissa | (i ^ 0x3ff00000);
  Doubles x = (Doubles)((newHigh << 32) | (bits & 0xffffffff));
  k += (Ints64)((Words64)i >> 20);
  Doubles f = x - 1.0;
  Doubles dk;
  toDoubles(k, dk);
  Doubles s = f / (2.0 + f);
  Doubles z = s * s, w = z * z;
  Doubles t1 = w * (lg2 + w * (lg4 + w * lg6));
  Doubles t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)));
  Doubles r = t2 + t1;
  Ints64 mid = ((mantissa - 0x6147a) | (0x6b851 - mantissa)) > 0;
  Doubles hfsq = 0.5 * f * f;
  Doubles wide = dk * ln2Hi - ((hfsq - (s * (hfsq + r) + dk * ln2Lo)) - f);
  Doubles narrow = dk * ln2Hi - ((s * (f - r) - dk * ln2Lo) - f);
  select(mid, wide, narrow);
  y = narrow;
}

/// cos(x) for x in [0, 8): fdlibm's reduction by pi/2 (two-part pi/2) and
/// its kernel cos and sin on [-pi/4, pi/4].
MOERT_INLINE void cosInPlace(Doubles &x) {
  const double invPio2 = 6.36619772367581382433e-01,
               pio2Part1 = 1.57079632673412561417e+00,
               pio2Part1Tail = 6.07710050650619224932e-11;
  const double c1 = 4.16666666666666019037e-02,
               c2 = -1.38888888888741095749e-03,
               c3 = 2.48015872894767294178e-05,
               c4 = -2.75573143513906633035e-07,
               c5 = 2.08757232129817482790e-09,
               c6 = -1.13596475577881948265e-11;
  const double s1 = -1.66666666666666324348e-01,
               s2 = 8.33333333332248946124e-03,
               s3 = -1.98412698298579493134e-04,
               s4 = 2.75573137070700676789e-06,
               s5 = -2.50507602534068634195e-08,
               s6 = 1.58969099521155010221e-10;
  // n = x 2/pi rounded to an integer, which lands in the low bits.
  Doubles shifted = x * invPio2 + kMagic;
  Ints64 quadrant = (Ints64)shifted;
  Doubles n = shifted - kMagic;
  Doubles y = (x - n * pio2Part1) - n * pio2Part1Tail;
  Doubles z = y * y;
  Doubles cosR = z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * c6)))));
  Doubles hz = 0.5 * z, w = 1.0 - hz;
  Doubles cosY = w + (((1.0 - w) - hz) + z * cosR);
  Doubles sinY =
      y + z * y * (s1 + z * (s2 + z * (s3 + z * (s4 + z * (s5 + z * s6)))));
  // cos(y + n pi/2) = cos y, -sin y, -cos y, sin y for n mod 4 = 0..3.
  select(-(quadrant & 1), sinY, cosY);
  Ints64 sign = (Ints64)((Words64)((quadrant + 1) & 2) << 62);
  x = (Doubles)((Ints64)cosY ^ sign);
}

/// moert::detail::fillNormalAssuming (Random.h): returns how many values
/// the scalar path computed.
MOERT_CLONES int64_t fillBlocks(double relativeError, uint64_t key,
                                uint64_t first, int64_t count, double scale,
                                float *out) {
  int64_t fromScalarPath = 0;
  Words64 lane;
  for (int l = 0; l < kLanes; ++l)
    lane[l] = l;
  for (int64_t begin = 0; begin < count; begin += kLanes) {
    Words64 index = first + begin + lane;
    Doubles u1, u2;
    uniformAt(key, 2 * index, u1);
    uniformAt(key, 2 * index + 1, u2);
    // 1 - u1 is exact (u1 is on a 2^-53 grid), so log(1 - u1) is log1p(-u1).
    Doubles radius = 1.0 - u1;
    logInPlace(radius);
    radius = radius * -2.0 + 0.0; // +0, as the scalar -2 * log1p(-0)
    for (int l = 0; l < kLanes; ++l)
      radius[l] = std::sqrt(radius[l]);
    Doubles cosine = 2.0 * M_PI * u2;
    cosInPlace(cosine);
    Doubles value = scale * (radius * cosine);
    // The float is certain when both ends of the error interval round to
    // it; else (rarely) the scalar path decides.
    Doubles slack =
        relativeError * (Doubles)((Words64)value & 0x7fffffffffffffffULL);
    Floats8 rounded = __builtin_convertvector(value, Floats8);
    Ints32x8 certain =
        (__builtin_convertvector(value - slack, Floats8) == rounded) &
        (__builtin_convertvector(value + slack, Floats8) == rounded);
    int lanes = static_cast<int>(std::min<int64_t>(kLanes, count - begin));
    std::memcpy(out + begin, &rounded, lanes * sizeof(float));
    // One test for the whole vector (a lane is all ones when certain):
    // testing the lanes one by one took 2-4% of the loop's time.
    uint64_t words[sizeof(certain) / sizeof(uint64_t)];
    std::memcpy(words, &certain, sizeof(certain));
    if ((words[0] & words[1] & words[2] & words[3]) == ~uint64_t(0))
      continue;
    for (int l = 0; l < lanes; ++l)
      if (!certain[l]) {
        out[begin + l] =
            static_cast<float>(scale * moert::normalAt(key, first + begin + l));
        ++fromScalarPath;
      }
  }
  return fromScalarPath;
}

} // namespace

int64_t moert::detail::fillNormalAssuming(double relativeError, uint64_t key,
                                          uint64_t first, int64_t count,
                                          double scale, float *out) {
  return fillBlocks(relativeError, key, first, count, scale, out);
}

void moert::fillNormal(uint64_t key, uint64_t first, int64_t count,
                       double scale, float *out) {
  detail::fillNormalAssuming(kRelativeError, key, first, count, scale, out);
}
