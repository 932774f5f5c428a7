//===- GemmPeak.cpp - the CPU GEMM's peak rate, f32 and bf16 --------------===//
//
// Times moert::cpu::detail::gemm, the GEMM every CPU kernel calls, on a
// large square product and on an expert-sized one, with f32 and with bf16
// operands (f32 accumulation), on every thread. Prints one JSON line per
// case: the best of several runs, in GFLOP/s, and for bf16 whether oneDNN's
// bf16 matmul ran or the operands were widened to f32. Run with
// ONEDNN_VERBOSE=1 to see which oneDNN implementation (ISA) computes each.
//
//===----------------------------------------------------------------------===//

#include "Gemm.h"
#include "moert/Bf16.h"
#include "moert/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct Case {
  const char *name;
  int64_t m, n, k;
};

template <typename T>
std::vector<T> randomMatrix(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<T> values(count);
  for (T &value : values) {
    if constexpr (std::is_same_v<T, moert::bf16>)
      value = moert::toBf16(normal(rng));
    else
      value = normal(rng);
  }
  return values;
}

/// The best rate of `repeats` products c = a b^T, after one warm-up.
template <typename T> double gflops(const Case &c, int repeats) {
  std::vector<T> a = randomMatrix<T>(c.m * c.k, 1),
                 b = randomMatrix<T>(c.n * c.k, 2);
  std::vector<float> out(c.m * c.n);
  double best = 0;
  for (int run = 0; run <= repeats; ++run) {
    auto start = std::chrono::steady_clock::now();
    moert::cpu::detail::gemm(false, true, c.m, c.n, c.k, a.data(), c.k,
                             b.data(), c.k, 0.0f, out.data(), c.n);
    std::chrono::duration<double> seconds =
        std::chrono::steady_clock::now() - start;
    if (run > 0)
      best = std::max(best, 2.0 * c.m * c.n * c.k / seconds.count() / 1e9);
  }
  return best;
}

} // namespace

int main(int argc, char **argv) {
  return moert::exitOnErrors("moe-gemm-peak", [&] {
    // On a shared machine a few runs often all meet a neighbour's load.
    char *end = nullptr;
    long repeats = argc > 1 ? std::strtol(argv[1], &end, 10) : 20;
    if (argc > 2 || (argc == 2 && (*argv[1] == '\0' || *end != '\0')) ||
        repeats < 1 || repeats > 1000000)
      moert::fail("usage: moe-gemm-peak [REPEATS, 1 to 1000000]");
    // 2048^3, and one expert of the small config: its capacity (320 rows of
    // 8 x 256 tokens, top-2 of 16 experts, factor 1.25) x 1408 x 512.
    for (const Case &c : {Case{"square-2048", 2048, 2048, 2048},
                          Case{"expert", 320, 1408, 512}})
      for (const char *precision : {"f32", "bf16"}) {
        double rate = std::string(precision) == "f32"
                          ? gflops<float>(c, static_cast<int>(repeats))
                          : gflops<moert::bf16>(c, static_cast<int>(repeats));
        std::string path = std::string(precision) == "f32" ? "f32"
                           : moert::cpu::detail::hasBf16Matmul()
                               ? "onednn-bf16-matmul"
                               : "widened-to-f32";
        fmt::print("{{\"gemm\": \"{}\", \"m\": {}, \"n\": {}, \"k\": {}, "
                   "\"precision\": \"{}\", \"path\": \"{}\", "
                   "\"gflops\": {:.1f}}}\n",
                   c.name, c.m, c.n, c.k, precision, path, rate);
      }
    return 0;
  });
}
