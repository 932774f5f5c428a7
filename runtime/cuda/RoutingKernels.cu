//===- RoutingKernels.cu - f32 CUDA routing kernels -----------------------===//
//
// Gate, gate normalization, dispatch (route, place), and combine of
// CudaKernels.h; the router losses and metrics are in RouterStatistics.cu.
//
// The gate runs one thread per token on moert/RowMath.h's row functions,
// the CPU kernels' own, with the token's double scratch in the workspace:
// same decisions (top-k on the f32 probabilities, lower index on ties).
//
// The capacity queues are token-major: an assignment's slot counts the
// earlier assignments of its expert. One block per expert scans all the
// assignments in order, a chunk at a time (8 consecutive ones per thread),
// with a block-wide prefix sum.
// With priority, each expert keeps its `capacity` assignments of highest
// priority, ties to the earlier: a stable radix sort by (expert, priority
// descending) ranks each assignment within its expert.
//
// Gathers (dispatch's gradient, combine) run a warp per token and sum its
// choices in choice order, with the CPU's f32 rounding (no FMA contraction),
// so they match the CPU bit for bit; combine's gradient runs a warp per
// assignment (a kept row belongs to one assignment, so writes are disjoint).
// A bad expert index or slot is reported in the device error word where the
// CPU kernel throws, and its row is skipped.
//
//===----------------------------------------------------------------------===//

#include "Scratch.h"
#include "Support.h"

#include "moert/CudaKernels.h"
#include "moert/Error.h"
#include "moert/RowMath.h"

#include <climits>
#include <cub/device/device_radix_sort.cuh>

using namespace moert::cuda;
namespace rows = moert::rows;

namespace {

/// Threads per block of the one-thread-per-token kernels: small blocks
/// spread a few thousand tokens over every SM.
constexpr int kRowThreads = 64;
inline unsigned rowBlocks(int64_t count) {
  int64_t blocks = (count + kRowThreads - 1) / kRowThreads;
  return static_cast<unsigned>(blocks < 1       ? 1
                               : blocks < 65536 ? blocks
                                                : 65536);
}

/// The buffer row of assignment i: -1 when it was dropped (slot -1) or when
/// its expert index or slot is outside the buffer, which `report` reports
/// (as the CPU's checkAssignments: the index first, then the slot).
__device__ int64_t keptRow(const int32_t *indices, const int32_t *slots,
                           int64_t i, int64_t experts, int64_t capacity,
                           bool report, DeviceError *errors, CheckedOp op) {
  int32_t slot = slots[i];
  if (slot < 0)
    return -1;
  int32_t expert = indices[i];
  if (expert < 0 || expert >= experts) {
    if (report)
      reportError(errors, DeviceCheck::ExpertIndex, op, expert, experts);
    return -1;
  }
  if (slot >= capacity) {
    if (report)
      reportError(errors, DeviceCheck::Slot, op, slot, capacity);
    return -1;
  }
  return int64_t(expert) * capacity + slot;
}

//===----------------------------------------------------------------------===//
// Gate
//===----------------------------------------------------------------------===//

__global__ void gateKernel(const float *logits, const float *bias,
                           int64_t tokens, int64_t experts,
                           moert::GateConfig config, double *scratch,
                           char *taken, float *probs, float *weights,
                           int32_t *indices) {
  for (int64_t t : gridStride(tokens)) {
    double *z = scratch + 2 * t * experts;
    rows::gateRow(logits + t * experts, bias, experts, config, z, z + experts,
                  taken + t * experts, probs + t * experts,
                  weights + t * config.topK, indices + t * config.topK);
  }
}

__global__ void gateGradKernel(const float *logits, const int32_t *indices,
                               int64_t tokens, int64_t experts,
                               moert::GateConfig config, const float *dProbs,
                               const float *dWeights, double *scratch,
                               float *dLogits, DeviceError *errors) {
  int64_t topK = config.topK;
  for (int64_t t : gridStride(tokens)) {
    bool valid = true;
    for (int64_t c = 0; c < topK && valid; ++c)
      valid = checkIndex(errors, DeviceCheck::ExpertIndex, CheckedOp::Gate,
                         indices[t * topK + c], experts);
    if (!valid)
      continue;
    double *centered = scratch + 3 * t * experts;
    rows::gateGradRow(logits + t * experts, indices + t * topK, experts, config,
                      dProbs + t * experts, dWeights + t * topK, centered,
                      centered + experts, centered + 2 * experts,
                      dLogits + t * experts);
  }
}

/// gateNorm (dy null) or its gradient, a token per thread.
__global__ void gateNormKernel(const float *logits, const float *dy,
                               int64_t tokens, int64_t experts, double lambda,
                               double eps, double *scratch, float *out) {
  for (int64_t t : gridStride(tokens)) {
    double *z = scratch + 3 * t * experts, *centered = z + experts,
           *grad = z + 2 * experts;
    double std = rows::normalizeRow(logits + t * experts, experts, lambda, eps,
                                    centered, z);
    float *row = out + t * experts;
    if (!dy) {
      for (int64_t e = 0; e < experts; ++e)
        row[e] = static_cast<float>(z[e]);
      continue;
    }
    for (int64_t e = 0; e < experts; ++e)
      grad[e] = dy[t * experts + e];
    rows::normalizeRowGrad(centered, std, experts, lambda, eps, grad);
    for (int64_t e = 0; e < experts; ++e)
      row[e] = static_cast<float>(grad[e]);
  }
}

void launchGateNorm(const float *logits, const float *dy, int64_t tokens,
                    int64_t experts, double lambda, double eps, float *out) {
  double *scratch = nullptr;
  carveWorkspace(
      [&](Scratch &s) { scratch = s.take<double>(3 * tokens * experts); });
  gateNormKernel<<<rowBlocks(tokens), kRowThreads, 0, stream()>>>(
      logits, dy, tokens, experts, lambda, eps, scratch, out);
  checkLaunch(dy ? "moert::cuda::gateNormGrad" : "moert::cuda::gateNorm");
}

//===----------------------------------------------------------------------===//
// Capacity queues
//===----------------------------------------------------------------------===//

constexpr int kQueueThreads = 1024;
/// Consecutive assignments per thread in a chunk of the queue scan.
constexpr int kPerThread = 8;

/// The exclusive prefix sum of `value` in thread order over the block
/// (blockDim a multiple of 32), and the total. Every thread calls it.
__device__ int blockScan(int value, int &total) {
  __shared__ int warpSums[32];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int inclusive = value;
  for (int offset = 1; offset < 32; offset *= 2) {
    int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset)
      inclusive += other;
  }
  if (lane == 31)
    warpSums[warp] = inclusive;
  __syncthreads();
  int before = inclusive - value;
  total = 0;
  for (int w = 0; w < int(blockDim.x / 32); ++w) {
    if (w < warp)
      before += warpSums[w];
    total += warpSums[w];
  }
  __syncthreads(); // the next call reuses warpSums
  return before;
}

/// Block e fills expert e's slots and counts, scanning the assignments in
/// token order, each of the `ranks` parts of `partSize` assignments in turn,
/// in chunks of kPerThread consecutive assignments per thread. Without
/// `kept`, an assignment is kept while its expert has fewer than `capacity`
/// earlier ones (queued); with it, when kept[i]. A kept assignment's slot
/// counts the kept ones before it in its part. Block 0 also checks every
/// expert index, in order, so that the first bad one is reported, and gives
/// it slot -1; dropped must be zero on entry.
__global__ void __launch_bounds__(kQueueThreads)
    queueKernel(const int32_t *indices, const unsigned char *kept,
                int64_t experts, int64_t capacity, int64_t ranks,
                int64_t partSize, int32_t *slots, int64_t *counts,
                int64_t *dropped, DeviceError *errors, CheckedOp op) {
  __shared__ int64_t firstBad;
  int64_t e = blockIdx.x, chunk = int64_t(blockDim.x) * kPerThread;
  int64_t queued = 0, keptTotal = 0;
  for (int64_t p = 0; p < ranks; ++p) {
    int64_t partEnd = (p + 1) * partSize;
    int64_t queuedBefore = queued, keptInPart = 0;
    for (int64_t base = p * partSize; base < partEnd; base += chunk) {
      int64_t first = base + threadIdx.x * kPerThread;
      int32_t expert[kPerThread];
      // Counts of this thread's assignments of e (low half) and of those
      // kept (high half): at most a chunk each, so one scan takes both.
      int mine = 0;
      int64_t bad = -1;
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        int64_t i = first + j;
        expert[j] = i < partEnd ? indices[i] : -1; // -1: no expert's
        if (expert[j] == e)
          mine += 1 + (!kept || kept[i] ? 1 << 16 : 0);
        if (e == 0 && bad < 0 && i < partEnd &&
            (expert[j] < 0 || expert[j] >= experts))
          bad = i;
      }
      int total;
      int before = blockScan(mine, total);
      int64_t position = queued + (before & 0xffff);
      int64_t keptPosition = keptInPart + (before >> 16);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        if (expert[j] != e)
          continue;
        int64_t i = first + j;
        if (!kept) {
          // The first `capacity` of the expert's queue are kept, so the
          // part's earlier kept ones are those queued since it began.
          slots[i] = position < capacity
                         ? static_cast<int32_t>(position - queuedBefore)
                         : -1;
        } else {
          slots[i] = kept[i] ? static_cast<int32_t>(keptPosition++) : -1;
        }
        ++position;
      }
      queued += total & 0xffff;
      keptInPart += total >> 16;
      if (e == 0) { // uniform over the block
        if (threadIdx.x == 0)
          firstBad = partEnd;
        __syncthreads();
        if (bad >= 0)
          atomicMin(reinterpret_cast<unsigned long long *>(&firstBad),
                    static_cast<unsigned long long>(bad));
        __syncthreads();
        if (bad >= 0) {
          for (int64_t i = bad; i < first + kPerThread && i < partEnd; ++i)
            if (indices[i] < 0 || indices[i] >= experts)
              slots[i] = -1;
          if (firstBad == bad)
            reportError(errors, DeviceCheck::ExpertIndex, op, indices[bad],
                        experts);
        }
        __syncthreads();
      }
    }
    if (!kept) {
      auto capped = [capacity](int64_t n) {
        return n < capacity ? n : capacity;
      };
      keptInPart = capped(queued) - capped(queuedBefore);
    }
    if (threadIdx.x == 0)
      counts[p * experts + e] = keptInPart;
    keptTotal += keptInPart;
  }
  if (threadIdx.x == 0 && queued > keptTotal)
    atomicAdd(reinterpret_cast<unsigned long long *>(dropped),
              static_cast<unsigned long long>(queued - keptTotal));
}

/// A radix key that orders by expert, then by priority descending (-0 and
/// +0 equal, as the CPU's comparisons have them); a bad expert index sorts
/// last as expert `experts`.
__global__ void priorityKeysKernel(const int32_t *indices,
                                   const float *priority, int64_t count,
                                   int64_t experts, uint64_t *keys,
                                   int32_t *order) {
  for (int64_t i : gridStride(count)) {
    int32_t expert = indices[i];
    uint64_t bucket = expert >= 0 && expert < experts ? expert : experts;
    float p = priority[i];
    uint32_t bits = p == 0.0f ? 0u : __float_as_uint(p);
    uint32_t ascending = (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
    keys[i] = bucket << 32 | ~ascending;
    order[i] = static_cast<int32_t>(i);
  }
}

/// kept[i] = whether assignment i is among the first `capacity` of its
/// expert in the sorted order (the stable sort left ties in token order).
__global__ void priorityKeptKernel(const uint64_t *sorted, const int32_t *order,
                                   int64_t count, int64_t experts,
                                   int64_t capacity, unsigned char *kept) {
  for (int64_t s : gridStride(count)) {
    uint64_t expert = sorted[s] >> 32;
    if (expert >= uint64_t(experts))
      continue;
    // The expert's first position: a lower bound of its smallest key.
    int64_t low = 0, high = s;
    while (low < high) {
      int64_t middle = (low + high) / 2;
      if (sorted[middle] >> 32 < expert)
        low = middle + 1;
      else
        high = middle;
    }
    kept[order[s]] = s - low < capacity;
  }
}

int bitsFor(int64_t value) {
  int bits = 0;
  while (bits < 32 && (int64_t(1) << bits) <= value)
    ++bits;
  return bits;
}

/// dispatch's decisions (moe.route with `ranks` parts): slots, counts
/// [ranks, experts] and *dropped.
void queueAssignments(const int32_t *indices, const float *priority,
                      int64_t assignments, int64_t experts, int64_t capacity,
                      int64_t ranks, int32_t *slots, int64_t *counts,
                      int64_t *dropped, CheckedOp op, const char *name) {
  check(cudaMemsetAsync(dropped, 0, sizeof(int64_t), stream()), name);
  unsigned char *kept = nullptr;
  if (priority && assignments > 0) {
    // CUB's radix sort counts items in int.
    if (assignments > INT32_MAX)
      moert::fail("{}: {} assignments are too many for the CUDA priority sort",
                  name, assignments);
    int count = static_cast<int>(assignments);
    int endBit = 32 + bitsFor(experts);
    uint64_t *keys = nullptr, *sortedKeys = nullptr;
    int32_t *order = nullptr, *sortedOrder = nullptr;
    size_t sortBytes = 0;
    check(cub::DeviceRadixSort::SortPairs(nullptr, sortBytes, keys, sortedKeys,
                                          order, sortedOrder, count, 0, endBit,
                                          stream()),
          name);
    void *sortScratch = nullptr;
    carveWorkspace([&](Scratch &s) {
      keys = s.take<uint64_t>(assignments);
      sortedKeys = s.take<uint64_t>(assignments);
      order = s.take<int32_t>(assignments);
      sortedOrder = s.take<int32_t>(assignments);
      kept = s.take<unsigned char>(assignments);
      sortScratch = s.take<char>(sortBytes);
    });
    priorityKeysKernel<<<blocksFor(assignments), kThreads, 0, stream()>>>(
        indices, priority, assignments, experts, keys, order);
    checkLaunch(name);
    check(cub::DeviceRadixSort::SortPairs(sortScratch, sortBytes, keys,
                                          sortedKeys, order, sortedOrder, count,
                                          0, endBit, stream()),
          name);
    priorityKeptKernel<<<blocksFor(assignments), kThreads, 0, stream()>>>(
        sortedKeys, sortedOrder, assignments, experts, capacity, kept);
    checkLaunch(name);
  }
  queueKernel<<<static_cast<unsigned>(experts), kQueueThreads, 0, stream()>>>(
      indices, kept, experts, capacity, ranks, assignments / ranks, slots,
      counts, dropped, deviceErrors(), op);
  checkLaunch(name);
}

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

/// Copies each kept assignment's token into its buffer row, a warp per
/// assignment; `report` checks the rows (place), which dispatch's own slots
/// need not.
template <typename T>
__global__ void
placeKernel(const float *tokens, const int32_t *indices, const int32_t *slots,
            int64_t assignments, int64_t hidden, int64_t topK, int64_t experts,
            int64_t capacity, bool report, T *buffer, DeviceError *errors) {
  int lane = threadIdx.x % 32;
  for (int64_t i = warpId(); i < assignments; i += warpStride()) {
    int64_t row = keptRow(indices, slots, i, experts, capacity,
                          report && lane == 0, errors, CheckedOp::Place);
    if (row < 0)
      continue;
    const float *in = tokens + i / topK * hidden;
    T *out = buffer + row * hidden;
    for (int64_t d = lane; d < hidden; d += 32)
      out[d] = moert::storedAs<T>(in[d]);
  }
}

/// y[t] = sum over t's kept choices c, in choice order, of weights[t, c]
/// (1 without weights) times its row, a warp per token: combine and
/// dispatch's gradient. `rows` in shared memory holds each warp's token's
/// rows and weights.
__global__ void gatherKernel(const float *rowsIn, const float *weights,
                             const int32_t *indices, const int32_t *slots,
                             int64_t tokens, int64_t topK, int64_t experts,
                             int64_t capacity, int64_t hidden, float *y,
                             DeviceError *errors, CheckedOp op) {
  extern __shared__ int64_t shared[];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int64_t *rowOf = shared + warp * topK;
  float *weightOf =
      reinterpret_cast<float *>(shared + kWarpsPerBlock * topK) + warp * topK;
  for (int64_t t = warpId(); t < tokens; t += warpStride()) {
    for (int64_t c = lane; c < topK; c += 32) {
      rowOf[c] = keptRow(indices, slots, t * topK + c, experts, capacity, true,
                         errors, op);
      weightOf[c] = weights ? weights[t * topK + c] : 1.0f;
    }
    __syncwarp();
    for (int64_t d = lane; d < hidden; d += 32) {
      float sum = 0.0f;
      for (int64_t c = 0; c < topK; ++c) {
        if (rowOf[c] < 0)
          continue;
        float value = rowsIn[rowOf[c] * hidden + d];
        // __fmul_rn is never fused into an FMA: the CPU's rounding.
        sum += weights ? __fmul_rn(weightOf[c], value) : value;
      }
      y[t * hidden + d] = sum;
    }
    __syncwarp(); // the next token reuses rowOf and weightOf
  }
}

/// combine's gradient, a warp per assignment: its row of dExpertOutput
/// (zero on entry) and its weight's gradient, a double dot product.
template <typename Stored, typename Gradient>
__global__ void
combineGradKernel(const Stored *expertOutput, const float *weights,
                  const int32_t *indices, const int32_t *slots, const float *dy,
                  int64_t assignments, int64_t topK, int64_t experts,
                  int64_t capacity, int64_t hidden, Gradient *dExpertOutput,
                  float *dWeights, DeviceError *errors) {
  int lane = threadIdx.x % 32;
  for (int64_t i = warpId(); i < assignments; i += warpStride()) {
    int64_t row = keptRow(indices, slots, i, experts, capacity, lane == 0,
                          errors, CheckedOp::Combine);
    if (row < 0) {
      if (lane == 0)
        dWeights[i] = 0.0f;
      continue;
    }
    float weight = weights[i];
    const float *dOut = dy + i / topK * hidden;
    const Stored *out = expertOutput + row * hidden;
    Gradient *dRow = dExpertOutput + row * hidden;
    double dot = 0;
    for (int64_t d = lane; d < hidden; d += 32) {
      dRow[d] = moert::storedAs<Gradient>(__fmul_rn(weight, dOut[d]));
      dot += static_cast<double>(dOut[d]) * moert::toFloat(out[d]);
    }
    for (int offset = 16; offset > 0; offset /= 2)
      dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    if (lane == 0)
      dWeights[i] = static_cast<float>(dot);
  }
}

size_t gatherShared(int64_t topK) {
  return kWarpsPerBlock * topK * (sizeof(int64_t) + sizeof(float));
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

void moert::cuda::gate(const float *logits, const float *bias, int64_t tokens,
                       int64_t experts, const GateConfig &config, float *probs,
                       float *weights, int32_t *indices) {
  double *scratch = nullptr;
  char *taken = nullptr;
  carveWorkspace([&](Scratch &s) {
    scratch = s.take<double>(2 * tokens * experts);
    taken = s.take<char>(tokens * experts);
  });
  gateKernel<<<rowBlocks(tokens), kRowThreads, 0, stream()>>>(
      logits, bias, tokens, experts, config, scratch, taken, probs, weights,
      indices);
  checkLaunch("moert::cuda::gate");
}

void moert::cuda::gateGrad(const float *logits, const int32_t *indices,
                           int64_t tokens, int64_t experts,
                           const GateConfig &config, const float *dProbs,
                           const float *dWeights, float *dLogits) {
  double *scratch = nullptr;
  carveWorkspace(
      [&](Scratch &s) { scratch = s.take<double>(3 * tokens * experts); });
  gateGradKernel<<<rowBlocks(tokens), kRowThreads, 0, stream()>>>(
      logits, indices, tokens, experts, config, dProbs, dWeights, scratch,
      dLogits, deviceErrors());
  checkLaunch("moert::cuda::gateGrad");
}

void moert::cuda::gateNorm(const float *logits, int64_t tokens, int64_t experts,
                           double lambda, double eps, float *y) {
  launchGateNorm(logits, nullptr, tokens, experts, lambda, eps, y);
}

void moert::cuda::gateNormGrad(const float *logits, const float *dy,
                               int64_t tokens, int64_t experts, double lambda,
                               double eps, float *dLogits) {
  launchGateNorm(logits, dy, tokens, experts, lambda, eps, dLogits);
}

template <typename T>
void moert::cuda::dispatch(const float *tokens, const int32_t *indices,
                           const float *priority, int64_t numTokens,
                           int64_t hidden, int64_t topK, int64_t experts,
                           int64_t capacity, T *buffer, int32_t *slots,
                           int64_t *counts, int64_t *dropped) {
  int64_t assignments = numTokens * topK;
  queueAssignments(indices, priority, assignments, experts, capacity, 1, slots,
                   counts, dropped, CheckedOp::Dispatch,
                   "moert::cuda::dispatch");
  // The unused rows are zero (0 bits in f32 and bf16), as place's.
  check(cudaMemsetAsync(buffer, 0, experts * capacity * hidden * sizeof(T),
                        stream()),
        "moert::cuda::dispatch");
  placeKernel<<<warpBlocks(assignments), kThreads, 0, stream()>>>(
      tokens, indices, slots, assignments, hidden, topK, experts, capacity,
      false, buffer, deviceErrors());
  checkLaunch("moert::cuda::dispatch");
}
template void moert::cuda::dispatch(const float *, const int32_t *,
                                    const float *, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, float *, int32_t *,
                                    int64_t *, int64_t *);
template void moert::cuda::dispatch(const float *, const int32_t *,
                                    const float *, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, bf16 *, int32_t *,
                                    int64_t *, int64_t *);

void moert::cuda::route(const int32_t *indices, const float *priority,
                        int64_t numTokens, int64_t topK, int64_t experts,
                        int64_t capacity, int64_t ranks, int32_t *slots,
                        int64_t *counts, int64_t *dropped) {
  queueAssignments(indices, priority, numTokens * topK, experts, capacity,
                   ranks, slots, counts, dropped, CheckedOp::Route,
                   "moert::cuda::route");
}

void moert::cuda::place(const float *tokens, const int32_t *indices,
                        const int32_t *slots, int64_t numTokens, int64_t hidden,
                        int64_t topK, int64_t experts, int64_t capacity,
                        float *buffer) {
  check(cudaMemsetAsync(buffer, 0, experts * capacity * hidden * sizeof(float),
                        stream()),
        "moert::cuda::place");
  int64_t assignments = numTokens * topK;
  placeKernel<<<warpBlocks(assignments), kThreads, 0, stream()>>>(
      tokens, indices, slots, assignments, hidden, topK, experts, capacity,
      true, buffer, deviceErrors());
  checkLaunch("moert::cuda::place");
}

void moert::cuda::dispatchGrad(const float *dBuffer, const int32_t *indices,
                               const int32_t *slots, int64_t numTokens,
                               int64_t hidden, int64_t topK, int64_t experts,
                               int64_t capacity, float *dTokens) {
  gatherKernel<<<warpBlocks(numTokens), kThreads, gatherShared(topK),
                 stream()>>>(dBuffer, nullptr, indices, slots, numTokens, topK,
                             experts, capacity, hidden, dTokens, deviceErrors(),
                             CheckedOp::Dispatch);
  checkLaunch("moert::cuda::dispatchGrad");
}

void moert::cuda::combine(const float *expertOutput, const float *weights,
                          const int32_t *indices, const int32_t *slots,
                          int64_t tokens, int64_t topK, int64_t experts,
                          int64_t capacity, int64_t hidden, float *y) {
  gatherKernel<<<warpBlocks(tokens), kThreads, gatherShared(topK), stream()>>>(
      expertOutput, weights, indices, slots, tokens, topK, experts, capacity,
      hidden, y, deviceErrors(), CheckedOp::Combine);
  checkLaunch("moert::cuda::combine");
}

template <typename Stored, typename Gradient>
void moert::cuda::combineGrad(const Stored *expertOutput, const float *weights,
                              const int32_t *indices, const int32_t *slots,
                              const float *dy, int64_t tokens, int64_t topK,
                              int64_t experts, int64_t capacity, int64_t hidden,
                              Gradient *dExpertOutput, float *dWeights) {
  // Rows no kept assignment reads get no gradient: zeros (0 bits in f32 and
  // bf16), which an expert-parallel program sums over the ranks.
  check(cudaMemsetAsync(dExpertOutput, 0,
                        experts * capacity * hidden * sizeof(Gradient),
                        stream()),
        "moert::cuda::combineGrad");
  int64_t assignments = tokens * topK;
  combineGradKernel<<<warpBlocks(assignments), kThreads, 0, stream()>>>(
      expertOutput, weights, indices, slots, dy, assignments, topK, experts,
      capacity, hidden, dExpertOutput, dWeights, deviceErrors());
  checkLaunch("moert::cuda::combineGrad");
}
#define MOERT_INSTANTIATE_COMBINE_GRAD(Stored, Gradient)                       \
  template void moert::cuda::combineGrad(                                      \
      const Stored *, const float *, const int32_t *, const int32_t *,         \
      const float *, int64_t, int64_t, int64_t, int64_t, int64_t, Gradient *,  \
      float *);
MOERT_INSTANTIATE_COMBINE_GRAD(float, float)
MOERT_INSTANTIATE_COMBINE_GRAD(float, moert::bf16)
MOERT_INSTANTIATE_COMBINE_GRAD(moert::bf16, float)
MOERT_INSTANTIATE_COMBINE_GRAD(moert::bf16, moert::bf16)
#undef MOERT_INSTANTIATE_COMBINE_GRAD
