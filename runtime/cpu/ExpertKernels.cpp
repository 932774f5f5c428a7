//===- ExpertKernels.cpp - CPU expert FFN kernels -------------------------===//
//
// The grouped SwiGLU FFN of CpuKernels.h and its gradient, and the runs of
// expert-parallel queues. Expert GEMMs go to
// oneDNN on each expert's filled rows (counts[e] from dispatch). With at
// least as many experts as threads, whole experts run in parallel, one per
// thread (oneDNN stays on its calling thread inside an OpenMP region): small
// per-expert GEMMs run ~25% faster so than split across threads one after
// another, and an expert's result does not depend on the thread it ran on.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/Error.h"

#include "Gemm.h"
#include "Vectorize.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

using namespace moert::cpu;

namespace {

/// Checks that every count lies in [0, capacity].
void checkCounts(const int64_t *counts, int64_t experts, int64_t capacity,
                 const char *op) {
  for (int64_t e = 0; e < experts; ++e)
    if (counts[e] < 0 || counts[e] > capacity)
      moert::fail("{}: count {} of expert {} is outside [0, {}]", op, counts[e],
                  e, capacity);
}

/// This thread's scratch of at least `size` values, kept from call to call.
/// The expert kernels ask each thread for the same per-expert sizes every
/// expert and every step, so a thread reuses one set of buffers, warm in
/// its cache, and no call allocates or page-faults. (Buffers packing every
/// expert's rows, shared by the threads, were cold: the SwiGLU gradient's
/// stores into them took 70% of its time.) `Slot` tells apart buffers of
/// one type that a kernel uses together.
template <typename T, int Slot = 0> T *scratch(size_t size) {
  static_assert(std::is_trivially_default_constructible_v<T>);
  thread_local std::unique_ptr<T[]> buffer;
  thread_local size_t capacity = 0;
  if (capacity < size) {
    capacity = size;
    buffer.reset(new T[capacity]);
  }
  return buffer.get();
}

using detail::expertGemm;

// The SwiGLU between the expert GEMMs is exp-bound: libm's scalar expf does
// not vectorize without -ffast-math, so it is written on generic vectors
// (Vectorize.h).
using detail::expInPlace;
using detail::Floats;
using detail::kLanes;
using detail::withRegisterWidth;

/// Loads/stores n <= kLanes floats (a full block when n is the constant).
MOERT_INLINE void load(Floats &v, const float *p, int64_t n) {
  v = Floats{};
  std::memcpy(&v, p, n * sizeof(float));
}
/// Loads n <= kLanes bf16 values, widened.
MOERT_INLINE void load(Floats &v, const moert::bf16 *p, int64_t n) {
  detail::Halves halves{};
  std::memcpy(&halves, p, n * sizeof(moert::bf16));
  detail::fromBf16(halves, v);
}
MOERT_INLINE void store(float *p, const Floats &v, int64_t n) {
  if (n == kLanes)
    detail::storeFloats(p, v);
  else
    std::memcpy(p, &v, n * sizeof(float));
}
/// A GEMM operand in bf16 is rounded as it is stored.
MOERT_INLINE void store(moert::bf16 *p, const Floats &v, int64_t n) {
  detail::Halves halves;
  detail::toBf16(v, halves);
  std::memcpy(p, &halves, n * sizeof(moert::bf16));
}

/// Calls block(oneRegister, i, n) on [i, i + n) for full blocks of kLanes,
/// then the tail; oneRegister, withRegisterWidth's, says how the blocks'
/// exps clamp.
template <typename Block>
MOERT_INLINE void forEachBlock(int64_t count, Block block) {
  withRegisterWidth([&](auto oneRegister) MOERT_LAMBDA_INLINE {
    int64_t i = 0;
    for (; i + kLanes <= count; i += kLanes)
      block(oneRegister, i, kLanes);
    if (i < count)
      block(oneRegister, i, count - i);
  });
}

/// act = silu(g) u of a block (an out-parameter: a vector wider than the
/// baseline ABI's registers is not returned).
template <bool kOneRegister>
MOERT_INLINE void gatedSiluBlock(const Floats &g, const Floats &u,
                                 Floats &act) {
  Floats e = -g;
  expInPlace<kOneRegister>(e);
  act = g / (1.0f + e) * u;
}

/// act = silu(gate) up.
MOERT_CLONES void gatedSilu(const float *gate, const float *up, float *act,
                            int64_t count) {
  forEachBlock(count,
               [&](auto oneRegister, int64_t i, int64_t n) MOERT_LAMBDA_INLINE {
                 Floats g, u, a;
                 load(g, gate + i, n);
                 load(u, up + i, n);
                 gatedSiluBlock<decltype(oneRegister)::value>(g, u, a);
                 store(act + i, a, n);
               });
}

/// gate and up, the GEMMs' f32 projections rounded to bf16, and act =
/// silu(gate) up from the rounded values: one pass where rounding each
/// projection and then the SwiGLU took three.
MOERT_CLONES void roundedGatedSilu(const float *gAcc, const float *uAcc,
                                   moert::bf16 *gate, moert::bf16 *up,
                                   moert::bf16 *act, int64_t count) {
  forEachBlock(count,
               [&](auto oneRegister, int64_t i, int64_t n) MOERT_LAMBDA_INLINE {
                 Floats g, u, a;
                 load(g, gAcc + i, n);
                 load(u, uAcc + i, n);
                 store(gate + i, g, n);
                 store(up + i, u, n);
                 load(g, gate + i, n);
                 load(u, up + i, n);
                 gatedSiluBlock<decltype(oneRegister)::value>(g, u, a);
                 store(act + i, a, n);
               });
}

/// Given g, u and da, with s = sigmoid(g): dg = da u s (1 + g (1 - s)),
/// du = da silu(g), and a = silu(g) u (for the down projection's weight
/// gradient; `act` may be `dAct`: each block is read before it is written).
template <typename T>
MOERT_INLINE void gatedSiluGradOf(const T *gate, const T *up, const float *dAct,
                                  T *dGate, T *dUp, T *act, int64_t count) {
  forEachBlock(count,
               [&](auto oneRegister, int64_t i, int64_t n) MOERT_LAMBDA_INLINE {
                 Floats g, u, da, s;
                 load(g, gate + i, n);
                 load(u, up + i, n);
                 load(da, dAct + i, n);
                 s = -g;
                 expInPlace<decltype(oneRegister)::value>(s);
                 s = 1.0f / (1.0f + s);
                 Floats silu = g * s;
                 store(dGate + i, da * u * s * (1.0f + g * (1.0f - s)), n);
                 store(dUp + i, da * silu, n);
                 store(act + i, silu * u, n);
               });
}

// Target clones cannot be templates: one clone per operand type.
MOERT_CLONES void gatedSiluGrad(const float *gate, const float *up,
                                const float *dAct, float *dGate, float *dUp,
                                float *act, int64_t count) {
  gatedSiluGradOf(gate, up, dAct, dGate, dUp, act, count);
}
MOERT_CLONES void gatedSiluGrad(const moert::bf16 *gate, const moert::bf16 *up,
                                const float *dAct, moert::bf16 *dGate,
                                moert::bf16 *dUp, moert::bf16 *act,
                                int64_t count) {
  gatedSiluGradOf(gate, up, dAct, dGate, dUp, act, count);
}

/// Runs body(e) for every expert: in parallel, one expert per thread, when
/// there are at least as many experts as threads; else one after another,
/// each GEMM using every thread. In parallel the fullest experts go first,
/// so that the last to finish are short ones and no thread waits long.
template <typename Body>
void forEachExpert(const int64_t *counts, int64_t experts, Body body) {
  if (experts >= omp_get_max_threads()) {
    std::vector<int64_t> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return counts[a] > counts[b];
    });
    // An error (a GEMM that cannot get memory) must not leave the OpenMP
    // region, which would terminate the process: the first one is thrown
    // after it.
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < experts; ++i) {
      try {
        body(order[i]);
      } catch (...) {
#pragma omp critical(moertExpertFailure)
        if (!failure)
          failure = std::current_exception();
      }
    }
    if (failure)
      std::rethrow_exception(failure);
  } else {
    for (int64_t e = 0; e < experts; ++e)
      body(e);
  }
}

/// Expert e's weight matrix (`size` values from `weights`) as a GEMM
/// operand of type T: in place, or f32 weights of a bf16 GEMM rounded into
/// this thread's scratch, one matrix at a time, so that the GEMM reads
/// them from cache (1.4 MB for the small benchmark's experts).
template <typename T, typename W>
const T *gemmWeights(const W *weights, int64_t size) {
  if constexpr (std::is_same_v<T, W>) {
    return weights;
  } else {
    T *rounded = scratch<T, 2>(size);
    convert(weights, size, rounded);
    return rounded;
  }
}

} // namespace

/// The expert kernels of every operand type T (f32, or bf16 with f32
/// results): the activations and gradients that feed a GEMM are stored as
/// T, the weights as T or (bf16 GEMMs) as f32 weights W rounded per expert.
template <typename T, typename W>
void moert::cpu::expertFfn(const T *x, const W *gateProj, const W *upProj,
                           const W *downProj, const int64_t *counts,
                           int64_t experts, int64_t capacity, int64_t hidden,
                           int64_t ffn, float *y, T *projections) {
  constexpr bool narrow = std::is_same_v<T, moert::bf16>;
  checkCounts(counts, experts, capacity, "moe.expert_ffn");
  forEachExpert(counts, experts, [&](int64_t e) {
    int64_t rows = counts[e];
    if (rows == 0)
      return; // an empty expert costs nothing
    T *g = projections + 2 * e * capacity * ffn, *u = g + capacity * ffn;
    const T *xe = x + e * capacity * hidden;
    float *gAcc, *uAcc;
    if constexpr (narrow) {
      // bf16 projections are the f32 GEMM results, rounded.
      gAcc = scratch<float, 1>(2 * capacity * ffn);
      uAcc = gAcc + rows * ffn;
    } else {
      gAcc = g;
      uAcc = u;
    }
    expertGemm(false, true, rows, ffn, hidden, xe, hidden,
               gemmWeights<T>(gateProj + e * ffn * hidden, ffn * hidden),
               hidden, 0.0f, gAcc, ffn);
    expertGemm(false, true, rows, ffn, hidden, xe, hidden,
               gemmWeights<T>(upProj + e * ffn * hidden, ffn * hidden), hidden,
               0.0f, uAcc, ffn);
    // a = silu(g) u; y = a Wd^T, straight into the expert's rows.
    T *a = scratch<T>(capacity * ffn);
    if constexpr (narrow)
      roundedGatedSilu(gAcc, uAcc, g, u, a, rows * ffn);
    else
      gatedSilu(g, u, a, rows * ffn);
    expertGemm(false, true, rows, hidden, ffn, a, ffn,
               gemmWeights<T>(downProj + e * hidden * ffn, hidden * ffn), ffn,
               0.0f, y + e * capacity * hidden, hidden);
  });
}

template <typename T, typename W>
void moert::cpu::expertFfnGrad(const T *x, const W *gateProj, const W *upProj,
                               const W *downProj, const T *projections,
                               const T *dy, const int64_t *counts,
                               int64_t experts, int64_t capacity,
                               int64_t hidden, int64_t ffn, float *dx,
                               float *dGateProj, float *dUpProj,
                               float *dDownProj) {
  checkCounts(counts, experts, capacity, "moe.expert_ffn");
  forEachExpert(counts, experts, [&](int64_t e) {
    int64_t rows = counts[e];
    float *dGate = dGateProj + e * ffn * hidden,
          *dUp = dUpProj + e * ffn * hidden;
    float *dDown = dDownProj + e * hidden * ffn;
    if (rows == 0) {
      // The weight gradients are complete: an idle expert's are zero.
      std::fill(dGate, dGate + ffn * hidden, 0.0f);
      std::fill(dUp, dUp + ffn * hidden, 0.0f);
      std::fill(dDown, dDown + hidden * ffn, 0.0f);
      return;
    }
    const T *xe = x + e * capacity * hidden, *dye = dy + e * capacity * hidden;
    const T *g = projections + 2 * e * capacity * ffn, *u = g + capacity * ffn;
    // da in f32 (a GEMM's result); dg, du and a as the next GEMMs'
    // operands. In f32, a overwrites da (each block is read before it is
    // written).
    float *dAct = scratch<float, 1>(capacity * ffn);
    T *dg = scratch<T>((std::is_same_v<T, float> ? 2 : 3) * capacity * ffn);
    T *du = dg + rows * ffn, *a;
    if constexpr (std::is_same_v<T, float>)
      a = dAct;
    else
      a = du + rows * ffn;
    // da = dy Wd; then dg, du, and a = silu(g) u.
    expertGemm(false, false, rows, ffn, hidden, dye, hidden,
               gemmWeights<T>(downProj + e * hidden * ffn, hidden * ffn), ffn,
               0.0f, dAct, ffn);
    gatedSiluGrad(g, u, dAct, dg, du, a, rows * ffn);
    // dWd = dy^T a, dWg = dg^T x, dWu = du^T x, dx = dg Wg + du Wu.
    float *dxe = dx + e * capacity * hidden;
    expertGemm(true, false, hidden, ffn, rows, dye, hidden, a, ffn, 0.0f, dDown,
               ffn);
    expertGemm(true, false, ffn, hidden, rows, dg, ffn, xe, hidden, 0.0f, dGate,
               hidden);
    expertGemm(true, false, ffn, hidden, rows, du, ffn, xe, hidden, 0.0f, dUp,
               hidden);
    expertGemm(false, false, rows, hidden, ffn, dg, ffn,
               gemmWeights<T>(gateProj + e * ffn * hidden, ffn * hidden),
               hidden, 0.0f, dxe, hidden);
    expertGemm(false, false, rows, hidden, ffn, du, ffn,
               gemmWeights<T>(upProj + e * ffn * hidden, ffn * hidden), hidden,
               1.0f, dxe, hidden);
  });
}

#define MOERT_EXPERT_KERNELS(T, W)                                             \
  template void moert::cpu::expertFfn(                                         \
      const T *, const W *, const W *, const W *, const int64_t *, int64_t,    \
      int64_t, int64_t, int64_t, float *, T *);                                \
  template void moert::cpu::expertFfnGrad(                                     \
      const T *, const W *, const W *, const W *, const T *, const T *,        \
      const int64_t *, int64_t, int64_t, int64_t, int64_t, float *, float *,   \
      float *, float *);
MOERT_EXPERT_KERNELS(float, float)
MOERT_EXPERT_KERNELS(bf16, bf16)
MOERT_EXPERT_KERNELS(bf16, float)
#undef MOERT_EXPERT_KERNELS

namespace {

/// Checks the runs of `counts` ([ranks, experts]) fit runs of `runCapacity`
/// rows and queues of `capacity` rows, and calls `move(block, e, queueRow,
/// rows)` for each run: block `block`'s first `rows` rows are rows
/// [queueRow, queueRow + rows) of expert e's queue.
template <typename Move>
void forEachRun(const int64_t *counts, int64_t ranks, int64_t experts,
                int64_t runCapacity, int64_t capacity, const char *op,
                Move move) {
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t p = 0, start = 0; p < ranks; ++p) {
      int64_t count = counts[p * experts + e];
      if (count < 0 || count > runCapacity || start + count > capacity)
        moert::fail("{}: rank {}'s run of {} rows for expert {} does not fit "
                    "runs of {} rows or a queue of {} rows",
                    op, p, count, e, runCapacity, capacity);
      start += count;
    }
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t p = 0, start = 0; p < ranks; ++p) {
      int64_t count = counts[p * experts + e];
      move(p * experts + e, e, start, count);
      start += count;
    }
}

} // namespace

void moert::cpu::mergeRuns(const float *runs, const int64_t *counts,
                           int64_t ranks, int64_t experts, int64_t runCapacity,
                           int64_t capacity, int64_t hidden, float *queue,
                           int64_t *queueCounts) {
  std::fill(queueCounts, queueCounts + experts, 0);
  forEachRun(counts, ranks, experts, runCapacity, capacity, "moe.merge_runs",
             [&](int64_t block, int64_t e, int64_t start, int64_t rows) {
               std::memcpy(queue + (e * capacity + start) * hidden,
                           runs + block * runCapacity * hidden,
                           rows * hidden * sizeof(float));
               queueCounts[e] = start + rows;
             });
  for (int64_t e = 0; e < experts; ++e)
    std::fill(queue + (e * capacity + queueCounts[e]) * hidden,
              queue + (e + 1) * capacity * hidden, 0.0f);
}

void moert::cpu::splitRuns(const float *queue, const int64_t *counts,
                           int64_t ranks, int64_t experts, int64_t capacity,
                           int64_t runCapacity, int64_t hidden, float *runs) {
  forEachRun(counts, ranks, experts, runCapacity, capacity, "moe.split_runs",
             [&](int64_t block, int64_t e, int64_t start, int64_t rows) {
               float *run = runs + block * runCapacity * hidden;
               std::memcpy(run, queue + (e * capacity + start) * hidden,
                           rows * hidden * sizeof(float));
               std::fill(run + rows * hidden, run + runCapacity * hidden, 0.0f);
             });
}
