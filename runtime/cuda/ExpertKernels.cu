//===- ExpertKernels.cu - CUDA expert FFN kernels -------------------------===//
//
// The experts' SwiGLU FFN of CudaKernels.h and its gradient, the runs of
// expert-parallel queues, and the experts' similarity metric.
//
// The FFN's GEMMs are grouped GEMMs over the experts (GroupedGemm.h) that
// read each expert's row count on the device: shapes are static
// ([experts, capacity, ...]) and the step is a CUDA graph, so the host
// never reads counts. A first kernel checks the counts as the CPU does and
// hands the GEMMs a copy in which a bad count is 0 rows, so nothing past a
// buffer is touched after it was reported. The intermediate activations
// take full [experts, capacity, ffn] scratch arrays for the same reason;
// only their filled rows are computed, but for the GEMMs on cuBLAS
// (MOE_CUDA_GROUPED_GEMM=cublas), which compute whole capacities and sum
// the weight gradients over rows zeroed past the counts. With bf16
// operands the GEMMs run on tensor cores and still produce f32, which the
// SwiGLU kernels round where the CPU kernels do: the projections and every
// intermediate that feeds a GEMM.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"
#include "Scratch.h"
#include "Support.h"

#include "moert/CudaKernels.h"

#include <algorithm>
#include <type_traits>

using namespace moert::cuda;

namespace {

/// rows[e] = counts[e] when it lies in [0, capacity], else 0 after
/// reporting the first bad count (in expert order, as the CPU checks). One
/// block.
__global__ void checkCountsKernel(const int64_t *counts, int64_t experts,
                                  int64_t capacity, int64_t *rows,
                                  DeviceError *errors, CheckedOp op) {
  __shared__ int64_t firstBad;
  if (threadIdx.x == 0)
    firstBad = experts;
  __syncthreads();
  for (int64_t e = threadIdx.x; e < experts; e += blockDim.x) {
    int64_t count = counts[e];
    bool bad = count < 0 || count > capacity;
    rows[e] = bad ? 0 : count;
    if (bad)
      atomicMin(reinterpret_cast<unsigned long long *>(&firstBad),
                static_cast<unsigned long long>(e));
  }
  __syncthreads();
  if (threadIdx.x == 0 && firstBad < experts)
    reportError(errors, DeviceCheck::ExpertCount, op, counts[firstBad],
                firstBad, capacity);
}

int64_t *checkedRows(const int64_t *counts, int64_t experts, int64_t capacity,
                     int64_t *rows, const char *name) {
  checkCountsKernel<<<1, kThreads, 0, stream()>>>(
      counts, experts, capacity, rows, deviceErrors(), CheckedOp::ExpertFfn);
  checkLaunch(name);
  return rows;
}

/// Which rows of an expert's queue a kernel visits: the filled ones, or
/// those past its count.
enum class Rows { Filled, PastCount };

/// Calls fn(e, i) for every element i of expert e's `Which` rows in
/// [experts, capacity, width] arrays, a warp per row (launched with
/// warpBlocks(experts * capacity)): a row skipped costs one test, and no
/// element a division.
template <Rows Which, typename Fn>
__device__ void forEachElementOf(const int64_t *rows, int64_t experts,
                                 int64_t capacity, int64_t width, Fn fn) {
  for (int64_t row = warpId(); row < experts * capacity; row += warpStride()) {
    int64_t e = row / capacity;
    if ((row - e * capacity < rows[e]) != (Which == Rows::Filled))
      continue;
    for (int64_t i = row * width + threadIdx.x % 32; i < (row + 1) * width;
         i += 32)
      fn(e, i);
  }
}

using moert::storedAs;
using moert::toFloat;

/// act = silu(g) u on the filled rows, from the GEMMs' f32 results
/// `accumulated` ([experts, 2, capacity, ffn]: g then u), which are stored
/// as T in `projections` (in f32 the two are one array).
template <typename T>
__global__ void gatedSiluKernel(const float *accumulated, const int64_t *rows,
                                int64_t experts, int64_t capacity, int64_t ffn,
                                T *projections, T *act) {
  int64_t block = capacity * ffn;
  forEachElementOf<Rows::Filled>(
      rows, experts, capacity, ffn, [&](int64_t e, int64_t i) {
        int64_t at = i + e * block; // [experts, 2, capacity, ffn]
        T gStored = storedAs<T>(accumulated[at]),
          uStored = storedAs<T>(accumulated[at + block]);
        if constexpr (!std::is_same_v<T, float>) {
          projections[at] = gStored;
          projections[at + block] = uStored;
        }
        float g = toFloat(gStored), u = toFloat(uStored);
        act[i] = storedAs<T>(g / (1.0f + expf(-g)) * u);
      });
}

/// Given g, u and da, with s = sigmoid(g): dg = da u s (1 + g (1 - s)),
/// du = da silu(g), and a = silu(g) u (for the down projection's weight
/// gradient; in f32 `act` is `dAct`: each element is read before it is
/// written).
template <typename T>
__global__ void gatedSiluGradKernel(const T *projections, const int64_t *rows,
                                    int64_t experts, int64_t capacity,
                                    int64_t ffn, const float *dAct, T *dGate,
                                    T *dUp, T *act) {
  int64_t block = capacity * ffn;
  forEachElementOf<Rows::Filled>(
      rows, experts, capacity, ffn, [&](int64_t e, int64_t i) {
        int64_t at = i + e * block; // [experts, 2, capacity, ffn]
        float g = toFloat(projections[at]),
              u = toFloat(projections[at + block]);
        float da = dAct[i];
        float s = 1.0f / (1.0f + expf(-g)), silu = g * s;
        dGate[i] = storedAs<T>(da * u * s * (1.0f + g * (1.0f - s)));
        dUp[i] = storedAs<T>(da * silu);
        act[i] = storedAs<T>(silu * u);
      });
}

/// Zeros the rows past each expert's count of three [experts, capacity,
/// width] arrays: the SwiGLU gradient's results, where a weight gradient
/// then sums whole capacities (PastCount::ZeroProducts).
template <typename T>
__global__ void zeroPastCountsKernel(const int64_t *rows, int64_t experts,
                                     int64_t capacity, int64_t width, T *a,
                                     T *b, T *c) {
  forEachElementOf<Rows::PastCount>(
      rows, experts, capacity, width,
      [&](int64_t, int64_t i) { a[i] = b[i] = c[i] = storedAs<T>(0.0f); });
}

/// The grouped GEMM of every expert's [capacity, ...] block, counted rows
/// `rows`, with one problem and term (callers add more).
template <typename T>
GroupedGemm<T> expertGemm(bool transA, bool transB, int64_t experts, int64_t m,
                          int64_t n, int64_t k, const int64_t *rows,
                          CountedDim counted) {
  GroupedGemm<T> gemm;
  gemm.transA = transA;
  gemm.transB = transB;
  gemm.groups = experts;
  gemm.m = m;
  gemm.n = n;
  gemm.k = k;
  gemm.counts = rows;
  gemm.counted = counted;
  return gemm;
}

//===----------------------------------------------------------------------===//
// Runs
//===----------------------------------------------------------------------===//

/// Each expert's runs: starts[p, e], rank p's first row in expert e's queue,
/// and totals[e], its filled rows (-1 when a run does not fit; the first
/// such run, in the CPU's expert-major order, is reported), also into
/// queueCounts when given (0 for a bad expert). One block.
__global__ void planRunsKernel(const int64_t *counts, int64_t ranks,
                               int64_t experts, int64_t runCapacity,
                               int64_t capacity, int64_t *starts,
                               int64_t *totals, int64_t *queueCounts,
                               DeviceError *errors, CheckedOp op) {
  __shared__ int64_t firstBad;
  if (threadIdx.x == 0)
    firstBad = experts;
  __syncthreads();
  for (int64_t e = threadIdx.x; e < experts; e += blockDim.x) {
    int64_t start = 0;
    for (int64_t p = 0; p < ranks; ++p) {
      int64_t count = counts[p * experts + e];
      if (count < 0 || count > runCapacity || start + count > capacity) {
        atomicMin(reinterpret_cast<unsigned long long *>(&firstBad),
                  static_cast<unsigned long long>(e));
        start = -1;
        break;
      }
      starts[p * experts + e] = start;
      start += count;
    }
    totals[e] = start;
    if (queueCounts)
      queueCounts[e] = start < 0 ? 0 : start;
  }
  __syncthreads();
  if (threadIdx.x != 0 || firstBad >= experts)
    return;
  int64_t e = firstBad;
  for (int64_t p = 0, start = 0; p < ranks; ++p) {
    int64_t count = counts[p * experts + e];
    if (count < 0 || count > runCapacity || start + count > capacity) {
      reportError(errors, DeviceCheck::RunFit, op, p, count, e, runCapacity,
                  capacity);
      return;
    }
    start += count;
  }
}

/// Copies `hidden` floats, a warp's lanes strided; zeros without `from`.
__device__ void copyRow(const float *from, float *to, int64_t hidden) {
  for (int64_t d = threadIdx.x % 32; d < hidden; d += 32)
    to[d] = from ? from[d] : 0.0f;
}

/// A warp per queue row (e, r): the row of the run that holds it, or zero
/// past the expert's runs (and for an expert whose runs do not fit).
__global__ void mergeRunsKernel(const float *runs, const int64_t *counts,
                                const int64_t *starts, const int64_t *totals,
                                int64_t ranks, int64_t experts,
                                int64_t runCapacity, int64_t capacity,
                                int64_t hidden, float *queue) {
  for (int64_t row = warpId(); row < experts * capacity; row += warpStride()) {
    int64_t e = row / capacity, r = row % capacity;
    const float *from = nullptr;
    if (r < totals[e])
      for (int64_t p = 0; p < ranks; ++p) {
        int64_t start = starts[p * experts + e];
        if (r < start + counts[p * experts + e]) {
          from = runs + ((p * experts + e) * runCapacity + r - start) * hidden;
          break;
        }
      }
    copyRow(from, queue + row * hidden, hidden);
  }
}

/// A warp per run row (p, e, r): its queue row, or zero past the run (and
/// for an expert whose runs do not fit).
__global__ void splitRunsKernel(const float *queue, const int64_t *counts,
                                const int64_t *starts, const int64_t *totals,
                                int64_t ranks, int64_t experts,
                                int64_t capacity, int64_t runCapacity,
                                int64_t hidden, float *runs) {
  for (int64_t row = warpId(); row < ranks * experts * runCapacity;
       row += warpStride()) {
    int64_t run = row / runCapacity, r = row % runCapacity;
    int64_t e = run % experts;
    const float *from = nullptr;
    if (totals[e] >= 0 && r < counts[run])
      from = queue + (e * capacity + starts[run] + r) * hidden;
    copyRow(from, runs + row * hidden, hidden);
  }
}

/// The runs' plan in the workspace: starts [ranks, experts], totals
/// [experts].
void planRuns(const int64_t *counts, int64_t ranks, int64_t experts,
              int64_t runCapacity, int64_t capacity, int64_t *queueCounts,
              int64_t *&starts, int64_t *&totals, CheckedOp op,
              const char *name) {
  carveWorkspace([&](Scratch &s) {
    starts = s.take<int64_t>(ranks * experts);
    totals = s.take<int64_t>(experts);
  });
  planRunsKernel<<<1, kThreads, 0, stream()>>>(
      counts, ranks, experts, runCapacity, capacity, starts, totals,
      queueCounts, deviceErrors(), op);
  checkLaunch(name);
}

//===----------------------------------------------------------------------===//
// Expert similarity
//===----------------------------------------------------------------------===//

/// The Gram matrix of the experts' parameter vectors in 64x64 tiles of
/// expert pairs (upper triangle, blockIdx.y) and `slices` equal parts of
/// each [ffn * hidden] matrix (blockIdx.x), each block's partial sums in
/// double: partials[slice][tile pair][64][64].
constexpr int kGramTile = 64, kGramK = 32;

__global__ void gramKernel(const float *gateProj, const float *upProj,
                           const float *downProj, int64_t experts, int64_t size,
                           int64_t slices, int64_t tiles, double *partials) {
  __shared__ float left[kGramK][kGramTile + 1], right[kGramK][kGramTile + 1];
  int64_t pair = blockIdx.y, ti = 0;
  while (pair >= tiles - ti) // row ti of the triangle holds tiles - ti pairs
    pair -= tiles - ti++;
  int64_t tj = ti + pair, e0 = ti * kGramTile, f0 = tj * kGramTile;
  int64_t first = size * blockIdx.x / slices,
          last = size * (blockIdx.x + 1) / slices;
  int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  double acc[4][4] = {};
  for (int m = 0; m < 3; ++m) {
    const float *matrix = m == 0 ? gateProj : m == 1 ? upProj : downProj;
    for (int64_t k0 = first; k0 < last; k0 += kGramK) {
      // A thread loads 8 adjacent k of one row of each side.
      int row = tid / 4, k = (tid % 4) * 8;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        bool inK = k0 + k + j < last;
        left[k + j][row] = inK && e0 + row < experts
                               ? matrix[(e0 + row) * size + k0 + k + j]
                               : 0.0f;
        right[k + j][row] = inK && f0 + row < experts
                                ? matrix[(f0 + row) * size + k0 + k + j]
                                : 0.0f;
      }
      __syncthreads();
      for (int kk = 0; kk < kGramK; ++kk) {
        double a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          a[i] = left[kk][ty * 4 + i];
          b[i] = right[kk][tx * 4 + i];
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j)
            acc[i][j] += a[i] * b[j];
      }
      __syncthreads();
    }
  }
  double *out = partials + (blockIdx.x * gridDim.y + blockIdx.y) *
                               int64_t(kGramTile * kGramTile);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      out[(ty * 4 + i) * kGramTile + tx * 4 + j] = acc[i][j];
}

/// gram[e, f] (e <= f) = the slices' partial sums, in slice order.
__global__ void gramSumKernel(const double *partials, int64_t experts,
                              int64_t slices, int64_t tiles, double *gram) {
  int64_t pairs = tiles * (tiles + 1) / 2;
  for (int64_t i : gridStride(experts * experts)) {
    int64_t e = i / experts, f = i % experts;
    if (f < e)
      continue;
    int64_t ti = e / kGramTile, tj = f / kGramTile;
    int64_t pair = ti * tiles - ti * (ti - 1) / 2 + tj - ti;
    int64_t at = (e % kGramTile) * kGramTile + f % kGramTile;
    double sum = 0;
    for (int64_t slice = 0; slice < slices; ++slice)
      sum += partials[(slice * pairs + pair) * kGramTile * kGramTile + at];
    gram[i] = sum;
  }
}

/// The mean cosine similarity over pairs e < f: each thread one e's row,
/// then the rows in order. One block; `rowSums` holds experts doubles.
__global__ void similarityKernel(const double *gram, int64_t experts,
                                 double *rowSums, float *result) {
  for (int64_t e = threadIdx.x; e < experts; e += blockDim.x) {
    double sum = 0;
    for (int64_t f = e + 1; f < experts; ++f) {
      double norms = sqrt(gram[e * experts + e]) * sqrt(gram[f * experts + f]);
      if (norms > 0) // a zero vector has similarity 0
        sum += gram[e * experts + f] / norms;
    }
    rowSums[e] = sum;
  }
  __syncthreads();
  if (threadIdx.x != 0)
    return;
  double total = 0;
  for (int64_t e = 0; e < experts; ++e)
    total += rowSums[e];
  *result = static_cast<float>(
      total / static_cast<double>(experts * (experts - 1) / 2));
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

template <typename T, typename W>
void moert::cuda::expertFfn(const T *x, const W *gateProj, const W *upProj,
                            const W *downProj, const int64_t *counts,
                            int64_t experts, int64_t capacity, int64_t hidden,
                            int64_t ffn, float *y, T *projections) {
  constexpr bool inF32 = std::is_same_v<T, float>;
  const char *name = "moert::cuda::expertFfn";
  int64_t *rows = nullptr;
  T *act = nullptr;
  float *accumulated = nullptr;
  carveWorkspace([&](Scratch &s) {
    rows = s.take<int64_t>(experts);
    act = s.take<T>(experts * capacity * ffn);
    if constexpr (!inF32)
      accumulated = s.take<float>(2 * experts * capacity * ffn);
  });
  checkedRows(counts, experts, capacity, rows, name);
  if constexpr (inF32)
    accumulated = projections;

  // g = x Wg^T and u = x Wu^T into [experts, 2, capacity, ffn].
  GroupedGemm<T> up = expertGemm<T>(false, true, experts, capacity, ffn, hidden,
                                    rows, CountedDim::M);
  up.lda = hidden, up.ldb = hidden, up.ldc = ffn;
  up.strideA = capacity * hidden, up.strideB = ffn * hidden;
  up.strideC = 2 * capacity * ffn;
  up.problems = 2;
  up.a[0][0] = up.a[1][0] = x;
  up.b[0][0] = gateProj, up.b[1][0] = upProj;
  up.c[0] = accumulated, up.c[1] = accumulated + capacity * ffn;
  groupedGemm(up, name);

  gatedSiluKernel<<<warpBlocks(experts * capacity), kThreads, 0, stream()>>>(
      accumulated, rows, experts, capacity, ffn, projections, act);
  checkLaunch(name);

  // y = a Wd^T.
  GroupedGemm<T> down = expertGemm<T>(false, true, experts, capacity, hidden,
                                      ffn, rows, CountedDim::M);
  down.lda = ffn, down.ldb = ffn, down.ldc = hidden;
  down.strideA = capacity * ffn, down.strideB = hidden * ffn;
  down.strideC = capacity * hidden;
  down.a[0][0] = act, down.b[0][0] = downProj, down.c[0] = y;
  groupedGemm(down, name);
}

template <typename T, typename W>
void moert::cuda::expertFfnGrad(const T *x, const W *gateProj, const W *upProj,
                                const W *downProj, const T *projections,
                                const T *dy, const int64_t *counts,
                                int64_t experts, int64_t capacity,
                                int64_t hidden, int64_t ffn, float *dx,
                                float *dGateProj, float *dUpProj,
                                float *dDownProj) {
  constexpr bool inF32 = std::is_same_v<T, float>;
  const char *name = "moert::cuda::expertFfnGrad";
  int64_t *rows = nullptr;
  float *dAct = nullptr;
  T *dGate = nullptr, *dUp = nullptr, *act = nullptr;
  int64_t block = capacity * ffn;
  carveWorkspace([&](Scratch &s) {
    rows = s.take<int64_t>(experts);
    dAct = s.take<float>(experts * block);
    dGate = s.take<T>(experts * block);
    dUp = s.take<T>(experts * block);
    if constexpr (!inF32)
      act = s.take<T>(experts * block);
  });
  checkedRows(counts, experts, capacity, rows, name);
  if constexpr (inF32)
    act = dAct; // a overwrites da

  // da = dy Wd.
  GroupedGemm<T> actGrad = expertGemm<T>(false, false, experts, capacity, ffn,
                                         hidden, rows, CountedDim::M);
  actGrad.lda = hidden, actGrad.ldb = ffn, actGrad.ldc = ffn;
  actGrad.strideA = capacity * hidden, actGrad.strideB = hidden * ffn;
  actGrad.strideC = block;
  actGrad.a[0][0] = dy, actGrad.b[0][0] = downProj, actGrad.c[0] = dAct;
  groupedGemm(actGrad, name);

  // dg, du, and a.
  gatedSiluGradKernel<<<warpBlocks(experts * capacity), kThreads, 0,
                        stream()>>>(projections, rows, experts, capacity, ffn,
                                    dAct, dGate, dUp, act);
  checkLaunch(name);
  // cuBLAS sums the weight gradients over whole capacities: with dg, du and
  // a zero past the counts, x's and dy's rows there (zeros, as dispatch,
  // place, merge_runs and combine's gradient leave them) add nothing.
  PastCount pastCount = PastCount::Garbage;
  if constexpr (!inF32)
    if (autoTensorCoreKernel() == TensorCoreKernel::Cublas) {
      zeroPastCountsKernel<<<warpBlocks(experts * capacity), kThreads, 0,
                             stream()>>>(rows, experts, capacity, ffn, dGate,
                                         dUp, act);
      checkLaunch(name);
      pastCount = PastCount::ZeroProducts;
    }

  // dWd = dy^T a over each expert's rows (zero for an idle expert).
  GroupedGemm<T> down = expertGemm<T>(true, false, experts, hidden, ffn,
                                      capacity, rows, CountedDim::K);
  down.lda = hidden, down.ldb = ffn, down.ldc = ffn;
  down.strideA = capacity * hidden, down.strideB = block;
  down.strideC = hidden * ffn;
  down.pastCount = pastCount;
  down.a[0][0] = dy, down.b[0][0] = act, down.c[0] = dDownProj;
  groupedGemm(down, name);

  // dWg = dg^T x and dWu = du^T x.
  GroupedGemm<T> weights = expertGemm<T>(true, false, experts, ffn, hidden,
                                         capacity, rows, CountedDim::K);
  weights.lda = ffn, weights.ldb = hidden, weights.ldc = hidden;
  weights.strideA = block, weights.strideB = capacity * hidden;
  weights.strideC = ffn * hidden;
  weights.pastCount = pastCount;
  weights.problems = 2;
  weights.a[0][0] = dGate, weights.a[1][0] = dUp;
  weights.b[0][0] = weights.b[1][0] = x;
  weights.c[0] = dGateProj, weights.c[1] = dUpProj;
  groupedGemm(weights, name);

  // dx = dg Wg + du Wu, one sum over both terms.
  GroupedGemm<T> input = expertGemm<T>(false, false, experts, capacity, hidden,
                                       ffn, rows, CountedDim::M);
  input.lda = ffn, input.ldb = hidden, input.ldc = hidden;
  input.strideA = block, input.strideB = ffn * hidden;
  input.strideC = capacity * hidden;
  input.terms = 2;
  input.a[0][0] = dGate, input.a[0][1] = dUp;
  input.b[0][0] = gateProj, input.b[0][1] = upProj;
  input.c[0] = dx;
  groupedGemm(input, name);
}
// Weights of the operands' type only: f32 weights with bf16 operands
// (weight-copies=per-expert) are the CPU target's, and the CUDA target
// refuses them when it emits the calls.
template void moert::cuda::expertFfn(const float *, const float *,
                                     const float *, const float *,
                                     const int64_t *, int64_t, int64_t, int64_t,
                                     int64_t, float *, float *);
template void moert::cuda::expertFfn(const bf16 *, const bf16 *, const bf16 *,
                                     const bf16 *, const int64_t *, int64_t,
                                     int64_t, int64_t, int64_t, float *,
                                     bf16 *);
template void moert::cuda::expertFfnGrad(const float *, const float *,
                                         const float *, const float *,
                                         const float *, const float *,
                                         const int64_t *, int64_t, int64_t,
                                         int64_t, int64_t, float *, float *,
                                         float *, float *);
template void moert::cuda::expertFfnGrad(const bf16 *, const bf16 *,
                                         const bf16 *, const bf16 *,
                                         const bf16 *, const bf16 *,
                                         const int64_t *, int64_t, int64_t,
                                         int64_t, int64_t, float *, float *,
                                         float *, float *);

void moert::cuda::mergeRuns(const float *runs, const int64_t *counts,
                            int64_t ranks, int64_t experts, int64_t runCapacity,
                            int64_t capacity, int64_t hidden, float *queue,
                            int64_t *queueCounts) {
  const char *name = "moert::cuda::mergeRuns";
  int64_t *starts = nullptr, *totals = nullptr;
  planRuns(counts, ranks, experts, runCapacity, capacity, queueCounts, starts,
           totals, CheckedOp::MergeRuns, name);
  mergeRunsKernel<<<warpBlocks(experts * capacity), kThreads, 0, stream()>>>(
      runs, counts, starts, totals, ranks, experts, runCapacity, capacity,
      hidden, queue);
  checkLaunch(name);
}

void moert::cuda::splitRuns(const float *queue, const int64_t *counts,
                            int64_t ranks, int64_t experts, int64_t capacity,
                            int64_t runCapacity, int64_t hidden, float *runs) {
  const char *name = "moert::cuda::splitRuns";
  int64_t *starts = nullptr, *totals = nullptr;
  planRuns(counts, ranks, experts, runCapacity, capacity, nullptr, starts,
           totals, CheckedOp::SplitRuns, name);
  splitRunsKernel<<<warpBlocks(ranks * experts * runCapacity), kThreads, 0,
                    stream()>>>(queue, counts, starts, totals, ranks, experts,
                                capacity, runCapacity, hidden, runs);
  checkLaunch(name);
}

void moert::cuda::expertSimilarity(const float *gateProj, const float *upProj,
                                   const float *downProj, int64_t experts,
                                   int64_t ffn, int64_t hidden, float *result) {
  const char *name = "moert::cuda::expertSimilarity";
  int64_t size = ffn * hidden;
  int64_t tiles = (experts + kGramTile - 1) / kGramTile;
  int64_t pairs = tiles * (tiles + 1) / 2;
  // About 128 blocks (fixed by the shapes, so the sums' order is too), each
  // summing 4096 floats of a matrix at least.
  int64_t slices = std::max<int64_t>(
      1, std::min<int64_t>(std::max<int64_t>(1, 128 / pairs), size / 4096));
  double *partials = nullptr, *gram = nullptr, *rowSums = nullptr;
  carveWorkspace([&](Scratch &s) {
    partials = s.take<double>(slices * pairs * kGramTile * kGramTile);
    gram = s.take<double>(experts * experts);
    rowSums = s.take<double>(experts);
  });
  gramKernel<<<dim3(slices, pairs), kThreads, 0, stream()>>>(
      gateProj, upProj, downProj, experts, size, slices, tiles, partials);
  checkLaunch(name);
  gramSumKernel<<<blocksFor(experts * experts), kThreads, 0, stream()>>>(
      partials, experts, slices, tiles, gram);
  checkLaunch(name);
  similarityKernel<<<1, kThreads, 0, stream()>>>(gram, experts, rowSums,
                                                 result);
  checkLaunch(name);
}
