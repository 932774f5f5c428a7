//===- Bf16.h - the bf16 storage type ---------------------------*- C++ -*-===//
//
// bfloat16 is the top half of an f32: 8 exponent and 7 mantissa bits. It is
// a storage type only: kernels widen it to f32 (exactly) and compute in f32;
// narrowing rounds to nearest, ties to even, as arith.truncf does. The
// reference interpreter and the CPU kernels round with this one function
// (host and device code), so their bf16 values are the same bits.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_BF16_H
#define MOERT_BF16_H

#include "moert/HostDevice.h"

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace moert {

/// A distinct type (not uint16_t), so that kernels overload on it.
struct bf16 {
  uint16_t bits;
};

/// An f32 as it is: with the bf16 overload, any operand type's value.
MOERT_HOST_DEVICE inline float toFloat(float value) { return value; }
MOERT_HOST_DEVICE inline float toFloat(bf16 value) {
  uint32_t bits = uint32_t(value.bits) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

/// Round to nearest, ties to even; a NaN stays a (quiet) NaN of its sign.
MOERT_HOST_DEVICE inline bf16 toBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return bf16{uint16_t((bits >> 16) | 0x40u)};
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bf16{uint16_t(bits >> 16)};
}

/// `value` stored as T: an f32 as it is, a bf16 rounded as toBf16 does.
template <typename T> MOERT_HOST_DEVICE inline T storedAs(float value) {
  if constexpr (std::is_same_v<T, bf16>)
    return toBf16(value);
  else
    return value;
}

/// `value` rounded to bf16 precision, as an f32.
MOERT_HOST_DEVICE inline float roundToBf16(float value) {
  return toFloat(toBf16(value));
}

} // namespace moert

#endif // MOERT_BF16_H
