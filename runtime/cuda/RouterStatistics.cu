//===- RouterStatistics.cu - f32 CUDA router losses and metrics -----------===//
//
// The auxiliary losses (per layer and pooled), the z-loss, the adaptive
// aux-loss coefficient and the routing metrics of CudaKernels.h, with the
// formulas of moert/RowMath.h that the CPU kernels use.
//
// Sums over tokens are deterministic and in double, in the CPU's order:
// partial sums over fixed chunks of kChunk tokens, each a thread's
// sequential sum, then the chunks' sums in chunk order. The pooled loss
// sums its layers' chunks in layer order, where the CPU (rows::PooledLoad)
// sums each layer's tokens in one run: the two agree to double rounding.
// Counts of expert choices are integers, so their atomics add up the same
// in any order.
//
//===----------------------------------------------------------------------===//

#include "Scratch.h"
#include "Support.h"

#include "moert/CudaKernels.h"
#include "moert/RowMath.h"

#include <algorithm>
#include <vector>

using namespace moert::cuda;
namespace rows = moert::rows;

namespace {

/// Tokens per partial sum, as in the CPU kernels.
constexpr int64_t kChunk = 256;

__host__ __device__ inline int64_t chunksOf(int64_t tokens) {
  return (tokens + kChunk - 1) / kChunk;
}

/// The experts a block can count in a shared-memory histogram (32 KiB).
constexpr int64_t kSharedExperts = 8192;

/// Up to kListChunk layers of one launch: probs (null when not summed),
/// indices, tokens, and each layer's first chunk among the launch's.
struct LayerList {
  const float *probs[kListChunk];
  const int32_t *indices[kListChunk];
  int64_t tokens[kListChunk];
  int64_t firstChunk[kListChunk + 1];
};

/// Block b takes chunk b of the launch's layers: per expert, the sum of the
/// chunk's probabilities (into sums, when probs are given) and the count of
/// its choices (into counts), [chunk, expert] each. Bad indices are
/// reported and not counted.
__global__ void chunkStatisticsKernel(LayerList list, int64_t experts,
                                      int64_t topK, bool sharedHistogram,
                                      double *sums, int64_t *counts,
                                      DeviceError *errors, CheckedOp op) {
  extern __shared__ int histogram[];
  int64_t chunk = blockIdx.x;
  int layer = 0;
  while (chunk >= list.firstChunk[layer + 1])
    ++layer;
  int64_t first = (chunk - list.firstChunk[layer]) * kChunk;
  int64_t last = min(first + kChunk, list.tokens[layer]);
  const float *probs = list.probs[layer];
  const int32_t *indices = list.indices[layer];

  if (sharedHistogram) {
    for (int64_t e = threadIdx.x; e < experts; e += blockDim.x)
      histogram[e] = 0;
    __syncthreads();
  }
  for (int64_t i = first * topK + threadIdx.x; i < last * topK;
       i += blockDim.x) {
    int32_t expert = indices[i];
    if (checkIndex(errors, DeviceCheck::ExpertIndex, op, expert, experts) &&
        sharedHistogram)
      atomicAdd(&histogram[expert], 1);
  }
  if (sharedHistogram)
    __syncthreads();

  for (int64_t e = threadIdx.x; e < experts; e += blockDim.x) {
    if (probs) {
      double sum = 0;
      for (int64_t t = first; t < last; ++t)
        sum += probs[t * experts + e];
      sums[chunk * experts + e] = sum;
    }
    int64_t count = 0;
    if (sharedHistogram) {
      count = histogram[e];
    } else {
      for (int64_t i = first * topK; i < last * topK; ++i)
        count += indices[i] == e;
    }
    counts[chunk * experts + e] = count;
  }
}

/// Launches chunkStatisticsKernel over `layers` layers, kListChunk at a
/// time; sums and counts get every layer's chunks in layer order.
void chunkStatistics(const float *const *probs, const int32_t *const *indices,
                     const int64_t *tokens, int64_t layers, int64_t experts,
                     int64_t topK, double *sums, int64_t *counts, CheckedOp op,
                     const char *name) {
  bool shared = experts <= kSharedExperts;
  size_t sharedBytes = shared ? experts * sizeof(int) : 0;
  int64_t done = 0; // chunks of earlier launches
  for (int64_t begin = 0; begin < layers; begin += kListChunk) {
    LayerList list{};
    int count = static_cast<int>(std::min<int64_t>(kListChunk, layers - begin));
    for (int l = 0; l < count; ++l) {
      list.probs[l] = probs ? probs[begin + l] : nullptr;
      list.indices[l] = indices[begin + l];
      list.tokens[l] = tokens[begin + l];
      list.firstChunk[l + 1] = list.firstChunk[l] + chunksOf(tokens[begin + l]);
    }
    for (int l = count; l < kListChunk; ++l)
      list.firstChunk[l + 1] = list.firstChunk[count];
    int64_t chunks = list.firstChunk[count];
    if (chunks == 0)
      continue;
    chunkStatisticsKernel<<<static_cast<unsigned>(chunks), kThreads,
                            sharedBytes, stream()>>>(
        list, experts, topK, shared, sums ? sums + done * experts : nullptr,
        counts + done * experts, deviceErrors(), op);
    checkLaunch(name);
    done += chunks;
  }
}

/// Per expert e (a thread each), the sums over `chunks` chunks of the
/// chunk statistics, in chunk order.
__device__ void sumChunks(const double *sums, const int64_t *counts,
                          int64_t chunks, int64_t experts, int64_t e,
                          double &sum, int64_t &count) {
  sum = 0;
  count = 0;
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    if (sums)
      sum += sums[chunk * experts + e];
    count += counts[chunk * experts + e];
  }
}

/// moe.aux_loss's per-expert terms (or their derivatives) into terms, and
/// with `result` the loss, their sum in expert order. One block.
__global__ void auxLossKernel(moert::AuxLossKind kind, const double *sums,
                              const int64_t *counts, int64_t chunks,
                              int64_t tokens, int64_t experts, int64_t topK,
                              bool derivative, double *terms, float *result) {
  for (int64_t e = threadIdx.x; e < experts; e += blockDim.x) {
    double sum;
    int64_t assigned;
    sumChunks(sums, counts, chunks, experts, e, sum, assigned);
    double meanProb = sum / static_cast<double>(tokens);
    terms[e] = rows::auxLossTerm(kind, meanProb, assigned, tokens * topK,
                                 experts, derivative);
  }
  if (!result)
    return;
  __syncthreads();
  if (threadIdx.x == 0) {
    double loss = 0;
    for (int64_t e = 0; e < experts; ++e)
      loss += terms[e];
    *result = static_cast<float>(loss);
  }
}

/// dProbs[t, e] = dLoss dL/dP_e / T: every prob enters only through
/// P_e = mean_t p_te.
__global__ void auxLossGradKernel(const double *dMean, const float *dLoss,
                                  int64_t tokens, int64_t experts,
                                  float *dProbs) {
  double scale = static_cast<double>(*dLoss);
  for (int64_t i : gridStride(tokens * experts))
    dProbs[i] = static_cast<float>(scale * dMean[i % experts] /
                                   static_cast<double>(tokens));
}

/// moe.aux_loss and its gradient: the chunk statistics, then the terms.
void auxLossTerms(moert::AuxLossKind kind, const float *probs,
                  const int32_t *indices, int64_t tokens, int64_t experts,
                  int64_t topK, bool derivative, float *result, double *&terms,
                  const char *name) {
  int64_t chunks = chunksOf(tokens);
  double *sums = nullptr;
  int64_t *counts = nullptr;
  carveWorkspace([&](Scratch &s) {
    sums = s.take<double>(chunks * experts);
    counts = s.take<int64_t>(chunks * experts);
    terms = s.take<double>(experts);
  });
  chunkStatistics(&probs, &indices, &tokens, 1, experts, topK, sums, counts,
                  CheckedOp::AuxLoss, name);
  auxLossKernel<<<1, kThreads, 0, stream()>>>(kind, sums, counts, chunks,
                                              tokens, experts, topK, derivative,
                                              terms, result);
  checkLaunch(name);
}

/// The pooled loss (with `result`) or the gradient's row `row` [experts]
/// shared by every token of every layer. One block.
__global__ void pooledAuxLossKernel(const double *sums, const int64_t *counts,
                                    int64_t chunks, int64_t experts,
                                    double tokens, double *countTotals,
                                    double *sumTotals, const float *dLoss,
                                    float *row, float *result) {
  for (int64_t e = threadIdx.x; e < experts; e += blockDim.x) {
    double sum;
    int64_t count;
    sumChunks(sums, counts, chunks, experts, e, sum, count);
    countTotals[e] = static_cast<double>(count);
    sumTotals[e] = sum;
    if (row)
      row[e] = static_cast<float>(
          static_cast<double>(*dLoss) *
          rows::pooledLossGradient(countTotals[e], experts, tokens));
  }
  if (!result)
    return;
  __syncthreads();
  if (threadIdx.x == 0)
    *result = static_cast<float>(
        rows::pooledLoss(countTotals, sumTotals, experts, tokens));
}

/// Up to kListChunk layers' gradients, blockIdx.y the layer.
struct GradList {
  float *dProbs[kListChunk];
  int64_t size[kListChunk];
};

__global__ void fillRowsKernel(GradList list, const float *row,
                               int64_t experts) {
  float *out = list.dProbs[blockIdx.y];
  int64_t size = list.size[blockIdx.y];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < size;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = row[i % experts];
}

/// The pooled statistics of `layers` layers; returns the pooled tokens N.
double pooledStatistics(const float *const *probs,
                        const int32_t *const *indices,
                        const int64_t *assignments, int64_t layers,
                        int64_t experts, int64_t topK, double *&sums,
                        int64_t *&counts, int64_t &chunks, double *&totals,
                        float *&row, const char *name) {
  std::vector<int64_t> tokens(layers);
  double pooled = 0;
  chunks = 0;
  for (int64_t l = 0; l < layers; ++l) {
    tokens[l] = assignments[l] / topK;
    pooled += static_cast<double>(tokens[l]);
    chunks += chunksOf(tokens[l]);
  }
  carveWorkspace([&](Scratch &s) {
    sums = probs ? s.take<double>(chunks * experts) : nullptr;
    counts = s.take<int64_t>(chunks * experts);
    totals = s.take<double>(2 * experts);
    row = s.take<float>(experts);
  });
  chunkStatistics(probs, indices, tokens.data(), layers, experts, topK, sums,
                  counts, CheckedOp::PooledAuxLoss, name);
  return pooled;
}

/// The sums over tokens of `width` values per token ([count, width]) into
/// sums[width]: each chunk's by one thread, then the chunks in order. One
/// block; partials holds chunksOf(count) * width doubles.
__device__ void sumOverTokens(const double *values, int64_t count,
                              int64_t width, double *partials, double *sums) {
  int64_t chunks = chunksOf(count);
  for (int64_t k = threadIdx.x; k < chunks * width; k += blockDim.x) {
    int64_t chunk = k / width, j = k % width;
    int64_t last = min((chunk + 1) * kChunk, count);
    double sum = 0;
    for (int64_t t = chunk * kChunk; t < last; ++t)
      sum += values[t * width + j];
    partials[k] = sum;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x) {
    double sum = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk)
      sum += partials[chunk * width + j];
    sums[j] = sum;
  }
  __syncthreads();
}

__global__ void zLossTermsKernel(const float *logits, int64_t tokens,
                                 int64_t experts, double *squares) {
  for (int64_t t : gridStride(tokens)) {
    double lse = rows::logSumExp(logits + t * experts, experts);
    squares[t] = lse * lse;
  }
}

__global__ void __launch_bounds__(kReduceThreads)
    zLossKernel(const double *squares, int64_t tokens, double *partials,
                float *result) {
  __shared__ double total;
  sumOverTokens(squares, tokens, 1, partials, &total);
  if (threadIdx.x == 0)
    *result = static_cast<float>(total / static_cast<double>(tokens));
}

__global__ void zLossGradKernel(const float *logits, int64_t tokens,
                                int64_t experts, const float *dLoss,
                                float *dLogits) {
  float scale = *dLoss;
  for (int64_t t : gridStride(tokens))
    rows::zLossGradRow(logits + t * experts, experts, scale, tokens,
                       dLogits + t * experts);
}

__global__ void adaptiveAuxCoeffKernel(const float *alpha,
                                       const int64_t *dropped,
                                       int64_t assignments, double xi,
                                       double alphaMax, double beta,
                                       float *result) {
  *result = static_cast<float>(rows::adaptiveCoefficient(
      *alpha, *dropped, assignments, xi, alphaMax, beta));
}

__global__ void expertLoadKernel(const int32_t *indices, int64_t assignments,
                                 int64_t experts, int64_t *load,
                                 DeviceError *errors) {
  for (int64_t i : gridStride(assignments))
    if (checkIndex(errors, DeviceCheck::ExpertIndex, CheckedOp::ExpertLoad,
                   indices[i], experts))
      atomicAdd(reinterpret_cast<unsigned long long *>(load + indices[i]), 1);
}

/// One thread: a layer's experts are few, and the step runs it once.
__global__ void expertBiasUpdateKernel(const float *bias, const int64_t *load,
                                       int64_t experts, double rate,
                                       float *result) {
  int64_t total = 0;
  for (int64_t e = 0; e < experts; ++e)
    total += load[e];
  for (int64_t e = 0; e < experts; ++e)
    result[e] = rows::expertBiasStep(bias[e], load[e], total, experts, rate);
}

/// Per token: its two probability ratios into ratios [tokens, 2], its
/// kept choices into load (checking their indices, as the CPU does) and
/// its drops into *drops. load and drops are zero on entry.
__global__ void routingTokensKernel(const float *probs, const int32_t *indices,
                                    const int32_t *slots, int64_t tokens,
                                    int64_t experts, int64_t topK,
                                    double *ratios, int64_t *load,
                                    int64_t *drops, DeviceError *errors) {
  for (int64_t t : gridStride(tokens)) {
    rows::topRatios(probs + t * experts, experts, ratios + 2 * t);
    unsigned long long dropped = 0;
    for (int64_t i = t * topK; i < (t + 1) * topK; ++i) {
      if (slots[i] < 0)
        ++dropped;
      else if (checkIndex(errors, DeviceCheck::ExpertIndex,
                          CheckedOp::RoutingMetrics, indices[i], experts))
        atomicAdd(reinterpret_cast<unsigned long long *>(load + indices[i]),
                  1ull);
    }
    if (dropped)
      atomicAdd(reinterpret_cast<unsigned long long *>(drops), dropped);
  }
}

__global__ void __launch_bounds__(kReduceThreads)
    routingMetricsKernel(const double *ratios, int64_t tokens, int64_t topK,
                         const int64_t *drops, double *partials,
                         float *dropRate, float *max1Max2, float *max2Max3) {
  __shared__ double sums[2];
  sumOverTokens(ratios, tokens, 2, partials, sums);
  if (threadIdx.x != 0)
    return;
  *dropRate = static_cast<float>(static_cast<double>(*drops) /
                                 static_cast<double>(tokens * topK));
  *max1Max2 = static_cast<float>(sums[0] / static_cast<double>(tokens));
  *max2Max3 = static_cast<float>(sums[1] / static_cast<double>(tokens));
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

void moert::cuda::auxLoss(AuxLossKind kind, const float *probs,
                          const int32_t *indices, int64_t tokens,
                          int64_t experts, int64_t topK, float *result) {
  double *terms = nullptr;
  auxLossTerms(kind, probs, indices, tokens, experts, topK, false, result,
               terms, "moert::cuda::auxLoss");
}

void moert::cuda::auxLossGrad(AuxLossKind kind, const float *probs,
                              const int32_t *indices, int64_t tokens,
                              int64_t experts, int64_t topK, const float *dLoss,
                              float *dProbs) {
  double *dMean = nullptr;
  auxLossTerms(kind, probs, indices, tokens, experts, topK, true, nullptr,
               dMean, "moert::cuda::auxLossGrad");
  auxLossGradKernel<<<blocksFor(tokens * experts), kThreads, 0, stream()>>>(
      dMean, dLoss, tokens, experts, dProbs);
  checkLaunch("moert::cuda::auxLossGrad");
}

void moert::cuda::pooledAuxLoss(const float *const *probs,
                                const int32_t *const *indices,
                                const int64_t *assignments, int64_t layers,
                                int64_t experts, int64_t topK, float *result) {
  const char *name = "moert::cuda::pooledAuxLoss";
  double *sums, *totals;
  int64_t *counts, chunks;
  float *row;
  double tokens =
      pooledStatistics(probs, indices, assignments, layers, experts, topK, sums,
                       counts, chunks, totals, row, name);
  pooledAuxLossKernel<<<1, kThreads, 0, stream()>>>(
      sums, counts, chunks, experts, tokens, totals, totals + experts, nullptr,
      nullptr, result);
  checkLaunch(name);
}

void moert::cuda::pooledAuxLossGrad(const int32_t *const *indices,
                                    const int64_t *assignments, int64_t layers,
                                    int64_t experts, int64_t topK,
                                    const float *dLoss, float *const *dProbs) {
  const char *name = "moert::cuda::pooledAuxLossGrad";
  double *sums, *totals;
  int64_t *counts, chunks;
  float *row;
  double tokens =
      pooledStatistics(nullptr, indices, assignments, layers, experts, topK,
                       sums, counts, chunks, totals, row, name);
  pooledAuxLossKernel<<<1, kThreads, 0, stream()>>>(
      nullptr, counts, chunks, experts, tokens, totals, totals + experts, dLoss,
      row, nullptr);
  checkLaunch(name);
  for (int64_t begin = 0; begin < layers; begin += kListChunk) {
    GradList list{};
    int count = static_cast<int>(std::min<int64_t>(kListChunk, layers - begin));
    int64_t largest = 0;
    for (int l = 0; l < count; ++l) {
      list.dProbs[l] = dProbs[begin + l];
      list.size[l] = assignments[begin + l] / topK * experts;
      largest = std::max(largest, list.size[l]);
    }
    dim3 grid(blocksFor(largest), count);
    fillRowsKernel<<<grid, kThreads, 0, stream()>>>(list, row, experts);
    checkLaunch(name);
  }
}

void moert::cuda::adaptiveAuxCoeff(const float *alpha, const int64_t *dropped,
                                   int64_t assignments, double xi,
                                   double alphaMax, double beta,
                                   float *result) {
  adaptiveAuxCoeffKernel<<<1, 1, 0, stream()>>>(alpha, dropped, assignments, xi,
                                                alphaMax, beta, result);
  checkLaunch("moert::cuda::adaptiveAuxCoeff");
}

void moert::cuda::expertLoad(const int32_t *indices, int64_t assignments,
                             int64_t experts, int64_t *load) {
  const char *name = "moert::cuda::expertLoad";
  check(cudaMemsetAsync(load, 0, experts * sizeof(int64_t), stream()), name);
  expertLoadKernel<<<blocksFor(assignments), kThreads, 0, stream()>>>(
      indices, assignments, experts, load, deviceErrors());
  checkLaunch(name);
}

void moert::cuda::expertBiasUpdate(const float *bias, const int64_t *load,
                                   int64_t experts, double rate,
                                   float *result) {
  expertBiasUpdateKernel<<<1, 1, 0, stream()>>>(bias, load, experts, rate,
                                                result);
  checkLaunch("moert::cuda::expertBiasUpdate");
}

void moert::cuda::zLoss(const float *logits, int64_t tokens, int64_t experts,
                        float *result) {
  double *squares = nullptr, *partials = nullptr;
  carveWorkspace([&](Scratch &s) {
    squares = s.take<double>(tokens);
    partials = s.take<double>(chunksOf(tokens));
  });
  zLossTermsKernel<<<blocksFor(tokens), kThreads, 0, stream()>>>(
      logits, tokens, experts, squares);
  checkLaunch("moert::cuda::zLoss");
  zLossKernel<<<1, kReduceThreads, 0, stream()>>>(squares, tokens, partials,
                                                  result);
  checkLaunch("moert::cuda::zLoss");
}

void moert::cuda::zLossGrad(const float *logits, int64_t tokens,
                            int64_t experts, const float *dLoss,
                            float *dLogits) {
  zLossGradKernel<<<blocksFor(tokens), kThreads, 0, stream()>>>(
      logits, tokens, experts, dLoss, dLogits);
  checkLaunch("moert::cuda::zLossGrad");
}

void moert::cuda::routingMetrics(const float *probs, const int32_t *indices,
                                 const int32_t *slots, int64_t tokens,
                                 int64_t experts, int64_t topK, float *dropRate,
                                 float *max1Max2, float *max2Max3,
                                 int64_t *load) {
  const char *name = "moert::cuda::routingMetrics";
  double *ratios = nullptr, *partials = nullptr;
  int64_t *drops = nullptr;
  carveWorkspace([&](Scratch &s) {
    ratios = s.take<double>(2 * tokens);
    partials = s.take<double>(2 * chunksOf(tokens));
    drops = s.take<int64_t>(1);
  });
  check(cudaMemsetAsync(load, 0, experts * sizeof(int64_t), stream()), name);
  check(cudaMemsetAsync(drops, 0, sizeof(int64_t), stream()), name);
  routingTokensKernel<<<blocksFor(tokens), kThreads, 0, stream()>>>(
      probs, indices, slots, tokens, experts, topK, ratios, load, drops,
      deviceErrors());
  checkLaunch(name);
  routingMetricsKernel<<<1, kReduceThreads, 0, stream()>>>(
      ratios, tokens, topK, drops, partials, dropRate, max1Max2, max2Max3);
  checkLaunch(name);
}
