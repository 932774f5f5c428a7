//===- Random.cpp - seeded, order-independent random streams --------------===//

#include "moert/Random.h"

#include <cmath>

uint64_t moert::streamKey(uint64_t seed, std::string_view name) {
  // FNV-1a over the name, then mixed with the seed.
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : name)
    hash = (hash ^ c) * 0x100000001b3ULL;
  return mix64(hash ^ mix64(seed));
}

double moert::uniformAt(uint64_t key, uint64_t index) {
  // The top 53 bits give every double in [0, 1) on a 2^-53 grid.
  return static_cast<double>(mix64(key + mix64(index)) >> 11) * 0x1.0p-53;
}

double moert::normalAt(uint64_t key, uint64_t index) {
  double u1 = uniformAt(key, 2 * index);
  double u2 = uniformAt(key, 2 * index + 1);
  double radius = std::sqrt(-2.0 * std::log1p(-u1)); // 1 - u1 is in (0, 1]
  return radius * std::cos(2.0 * M_PI * u2);
}

uint64_t moert::Stream::below(uint64_t bound) {
  // uniform() <= 1 - 2^-53, so the product stays below bound.
  return static_cast<uint64_t>(uniform() * static_cast<double>(bound));
}
