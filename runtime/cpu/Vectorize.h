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

} // namespace moert::cpu::detail

#endif // MOERT_CPU_VECTORIZE_H
