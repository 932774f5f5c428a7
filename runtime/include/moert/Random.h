//===- Random.h - seeded, order-independent random streams ------*- C++ -*-===//
//
// Initializers and data sampling must give the same numbers in the
// interpreter, in compiled code and across platforms, so the runtime uses its
// own counter-based generator (SplitMix64) rather than <random>'s
// distributions, whose output is implementation-defined. Element i of a
// stream is a pure function of (seed, stream name, i).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_RANDOM_H
#define MOERT_RANDOM_H

#include <cstdint>
#include <string_view>

namespace moert {

/// SplitMix64's output function: a bijective 64-bit mix. Inline: loops call
/// it per element (uniformAt, data fingerprints).
inline uint64_t mix64(uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

/// The key of the stream named `name` under `seed`.
uint64_t streamKey(uint64_t seed, std::string_view name);

/// Uniform in [0, 1) at position `index` of stream `key`.
double uniformAt(uint64_t key, uint64_t index);

/// Standard normal at position `index` of stream `key` (Box-Muller over the
/// uniforms at 2*index and 2*index+1).
double normalAt(uint64_t key, uint64_t index);

/// out[i] = float(scale * normalAt(key, first + i)) for i in [0, count),
/// bit for bit, computed many lanes at a time (NormalFill.cpp).
void fillNormal(uint64_t key, uint64_t first, int64_t count, double scale,
                float *out);

namespace detail {
/// fillNormal with the relative error its vector lanes assume: a value that
/// could round to another float within that error takes the scalar path.
/// Returns how many did. fillNormal's bound makes that about one value in
/// two million, too rare for a test to reach that path; a test passes a
/// large error to send every value through it, or zero to keep every value
/// on the lanes.
int64_t fillNormalAssuming(double relativeError, uint64_t key, uint64_t first,
                           int64_t count, double scale, float *out);
} // namespace detail

/// A sequential generator over one stream, for samplers.
class Stream {
public:
  Stream(uint64_t seed, std::string_view name) : key(streamKey(seed, name)) {}
  double uniform() { return uniformAt(key, position++); }
  /// Uniform integer in [0, bound); bound must be positive.
  uint64_t below(uint64_t bound);
  uint64_t getPosition() const { return position; }
  void setPosition(uint64_t value) { position = value; }

private:
  uint64_t key;
  uint64_t position = 0;
};

} // namespace moert

#endif // MOERT_RANDOM_H
