//===- GemmPeak.cpp - the CPU GEMM's peak rate, f32 and bf16 --------------===//
//
// Times moert::cpu::detail::gemm, the GEMM every CPU kernel calls, with f32
// and with bf16 operands (f32 accumulation): a large square product and an
// expert-sized one on every thread, and the experts as the expert kernels
// run them, one product per thread at once (the small and the tiny
// benchmark's expert shapes), whose rate bounds those kernels'. Prints one
// JSON line per case: the best of several runs, in GFLOP/s of all threads
// together, and for bf16 whether oneDNN's bf16 matmul ran or the operands
// were widened to f32. Run with ONEDNN_VERBOSE=1 to see which oneDNN
// implementation (ISA) computes each.
//
//===----------------------------------------------------------------------===//

#include "Gemm.h"
#include "moert/Bf16.h"
#include "moert/Error.h"

#include <fmt/format.h>
#include <omp.h>

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
  /// Whether each thread runs its own product (the expert kernels' way)
  /// rather than all threads one.
  bool perThread;
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

/// The best rate of `repeats` rounds of products c = a b^T, after one
/// warm-up: one product on all threads, or one per thread at once (each on
/// its own operands, as experts have their own weights).
template <typename T> double gflops(const Case &c, int products, int repeats) {
  std::vector<std::vector<T>> a(products), b(products);
  std::vector<std::vector<float>> out(products);
  for (int p = 0; p < products; ++p) {
    a[p] = randomMatrix<T>(c.m * c.k, 2 * p + 1);
    b[p] = randomMatrix<T>(c.n * c.k, 2 * p + 2);
    out[p].resize(c.m * c.n);
  }
  // Per-thread products go through the expert kernels' own entry point.
  auto product = [&](int p) {
    const T *pa = a[p].data(), *pb = b[p].data();
    if (c.perThread)
      moert::cpu::detail::expertGemm(false, true, c.m, c.n, c.k, pa, c.k, pb,
                                     c.k, 0.0f, out[p].data(), c.n);
    else
      moert::cpu::detail::gemm(false, true, c.m, c.n, c.k, pa, c.k, pb, c.k,
                               0.0f, out[p].data(), c.n);
  };
  double best = 0;
  for (int run = 0; run <= repeats; ++run) {
    auto start = std::chrono::steady_clock::now();
    if (c.perThread) {
#pragma omp parallel for schedule(static, 1)
      for (int p = 0; p < products; ++p)
        product(p);
    } else {
      product(0);
    }
    std::chrono::duration<double> seconds =
        std::chrono::steady_clock::now() - start;
    if (run > 0)
      best = std::max(best,
                      2.0 * products * c.m * c.n * c.k / seconds.count() / 1e9);
  }
  return best;
}

constexpr const char *kUsage =
    "usage: moe-gemm-peak [REPEATS, 1 to 1000000; default 20]";

} // namespace

int main(int argc, char **argv) {
  return moert::exitOnErrors("moe-gemm-peak", [&] {
    if (argc == 2 &&
        (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
      fmt::print("{}\nPrints the best GFLOP/s of REPEATS runs of each GEMM "
                 "case (f32 and bf16 operands) as JSON lines.\n",
                 kUsage);
      return 0;
    }
    // On a shared machine a few runs often all meet a neighbour's load.
    char *end = nullptr;
    long repeats = argc > 1 ? std::strtol(argv[1], &end, 10) : 20;
    if (argc > 2 || (argc == 2 && (*argv[1] == '\0' || *end != '\0')) ||
        repeats < 1 || repeats > 1000000)
      moert::fail(kUsage);
    // 2048^3; an expert of the small config: its capacity (320 rows of
    // 8 x 256 tokens, top-2 of 16 experts, factor 1.25) x 1408 x 512; and
    // one of the tiny benchmark's: 240 rows of 12 x 64 tokens, top-2 of 8
    // experts, factor 1.25, x 352 x 128.
    for (const Case &c : {Case{"square-2048", 2048, 2048, 2048, false},
                          Case{"expert", 320, 1408, 512, false},
                          Case{"expert-per-thread", 320, 1408, 512, true},
                          Case{"tiny-expert-per-thread", 240, 352, 128, true}})
      for (const char *precision : {"f32", "bf16"}) {
        int products = c.perThread ? omp_get_max_threads() : 1;
        double rate =
            std::string(precision) == "f32"
                ? gflops<float>(c, products, static_cast<int>(repeats))
                : gflops<moert::bf16>(c, products, static_cast<int>(repeats));
        std::string path = std::string(precision) == "f32" ? "f32"
                           : moert::cpu::detail::hasBf16Matmul()
                               ? "onednn-bf16-matmul"
                               : "widened-to-f32";
        fmt::print("{{\"gemm\": \"{}\", \"m\": {}, \"n\": {}, \"k\": {}, "
                   "\"products\": {}, \"precision\": \"{}\", "
                   "\"path\": \"{}\", \"gflops\": {:.1f}}}\n",
                   c.name, c.m, c.n, c.k, products, precision, path, rate);
      }
    return 0;
  });
}
