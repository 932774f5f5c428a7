//===- TransformerKernels.cu - f32 CUDA transformer kernels ---------------===//
//
// The transformer ops of CudaKernels.h but the linear layers' GEMMs
// (LinearKernels.cu), attention (AttentionKernels.cu) and RoPE
// (RopeKernels.cu): small kernels.
//
// Reproducibility: no float atomics. Every sum over rows (rms_norm's
// dWeight, bias gradients) is per-column partial sums over fixed chunks of
// rows, added in chunk order; embedding gradients sum each id's positions
// in position order (after a stable radix sort), as the CPU kernel does;
// block reductions use a fixed tree. Results depend on the shapes only.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"
#include "moert/Error.h"
#include "moert/RowMath.h"

#include "Support.h"

#include <cub/device/device_radix_sort.cuh>

#include <climits>

using namespace moert::cuda;

namespace {

//===----------------------------------------------------------------------===//
// Helpers.
//===----------------------------------------------------------------------===//

/// Blocks of a kernel that loops over `items` (rows, columns) by block.
unsigned blocksOver(int64_t items) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>(items, 65535)));
}

template <typename T> __device__ T warpSum(T value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ float warpMax(float value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

/// The sum over the block (a multiple of 32 threads) in a fixed tree,
/// returned to every thread; `scratch` holds 32 values of shared memory.
template <typename T> __device__ T blockSum(T value, T *scratch) {
  value = warpSum(value);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads(); // an earlier call may still read scratch
  if (lane == 0)
    scratch[warp] = value;
  __syncthreads();
  value = lane < int(blockDim.x / 32) ? scratch[lane] : T(0);
  return warpSum(value);
}

__device__ float blockMax(float value, float *scratch) {
  value = warpMax(value);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0)
    scratch[warp] = value;
  __syncthreads();
  value = lane < int(blockDim.x / 32) ? scratch[lane] : -INFINITY;
  return warpMax(value);
}

/// Slices of one workspace() buffer, each aligned to 256 bytes.
class Carver {
public:
  template <typename T> size_t add(int64_t count) {
    size_t offset = bytes;
    bytes += (std::max<int64_t>(count, 1) * sizeof(T) + 255) / 256 * 256;
    return offset;
  }
  char *take() { return static_cast<char *>(workspace(bytes)); }

private:
  size_t bytes = 0;
};

//===----------------------------------------------------------------------===//
// Sums over rows: partial[chunk, c] = the sum of term(r, c) over the rows r
// of the chunk, in row order, in double; then each column's chunks in order.
//===----------------------------------------------------------------------===//

struct ColumnChunks {
  int64_t rows, cols, chunkRows, chunks;
  explicit ColumnChunks(int64_t rows, int64_t cols) : rows(rows), cols(cols) {
    // 128 rows per chunk keeps the partials small and the grid wide; more
    // when grid.y would pass its limit.
    chunkRows = std::max<int64_t>(128, (rows + 65534) / 65535);
    chunks = std::max<int64_t>(1, (rows + chunkRows - 1) / chunkRows);
  }
};

template <typename Term>
__global__ void columnPartials(ColumnChunks shape, Term term, double *partial) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= shape.cols)
    return;
  int64_t begin = int64_t(blockIdx.y) * shape.chunkRows;
  int64_t end = begin + shape.chunkRows < shape.rows ? begin + shape.chunkRows
                                                     : shape.rows;
  double sum = 0;
  for (int64_t r = begin; r < end; ++r)
    sum += term(r, c);
  partial[int64_t(blockIdx.y) * shape.cols + c] = sum;
}

__global__ void sumPartials(ColumnChunks shape, const double *partial,
                            float *out) {
  for (int64_t c : gridStride(shape.cols)) {
    double sum = 0;
    for (int64_t chunk = 0; chunk < shape.chunks; ++chunk)
      sum += partial[chunk * shape.cols + c];
    out[c] = static_cast<float>(sum);
  }
}

/// out[c] = the sum over rows of term(r, c); `partial` holds
/// shape.chunks * cols doubles.
template <typename Term>
void sumOverRows(const ColumnChunks &shape, Term term, double *partial,
                 float *out) {
  if (shape.cols == 0)
    return;
  dim3 grid((shape.cols + kThreads - 1) / kThreads, shape.chunks);
  columnPartials<Term><<<grid, kThreads, 0, stream()>>>(shape, term, partial);
  checkLaunch("moert::cuda::columnPartials");
  sumPartials<<<blocksFor(shape.cols), kThreads, 0, stream()>>>(shape, partial,
                                                                out);
  checkLaunch("moert::cuda::sumPartials");
}

struct ColumnTerm {
  const float *dy;
  int64_t cols;
  __device__ float operator()(int64_t r, int64_t c) const {
    return dy[r * cols + c];
  }
};

/// rms_norm's dWeight term, in float as on the CPU.
template <typename Stored> struct RmsWeightTerm {
  const float *dy;
  const Stored *x;
  const float *scales;
  int64_t hidden;
  __device__ float operator()(int64_t r, int64_t i) const {
    return dy[r * hidden + i] * moert::toFloat(x[r * hidden + i]) * scales[r];
  }
};

//===----------------------------------------------------------------------===//
// Kernels.
//===----------------------------------------------------------------------===//

/// One block per row; a bad id reports and zeroes its row.
__global__ void embeddingKernel(const float *table, int64_t vocab,
                                int64_t hidden, const int32_t *ids,
                                int64_t count, DeviceError *errors,
                                float *out) {
  for (int64_t i = blockIdx.x; i < count; i += gridDim.x) {
    int32_t id = ids[i];
    bool valid = id >= 0 && id < vocab;
    if (!valid && threadIdx.x == 0)
      reportError(errors, DeviceCheck::TokenId, CheckedOp::Embedding, id,
                  vocab);
    for (int64_t d = threadIdx.x; d < hidden; d += blockDim.x)
      out[i * hidden + d] = valid ? table[id * hidden + d] : 0.0f;
  }
}

/// Sort keys: the id, or `vocab` (sorted last, then ignored) for a bad one.
__global__ void embeddingKeys(const int32_t *ids, int64_t count, int64_t vocab,
                              DeviceError *errors, uint32_t *keys,
                              int32_t *positions) {
  for (int64_t i : gridStride(count)) {
    int32_t id = ids[i];
    bool valid = checkIndex(errors, DeviceCheck::TokenId, CheckedOp::Embedding,
                            id, vocab);
    keys[i] = valid ? static_cast<uint32_t>(id) : static_cast<uint32_t>(vocab);
    positions[i] = static_cast<int32_t>(i);
  }
}

/// [begin[v], end[v]) = the sorted positions of id v (both zeroed before).
__global__ void embeddingRanges(const uint32_t *sorted, int64_t count,
                                int64_t vocab, int32_t *begin, int32_t *end) {
  for (int64_t k : gridStride(count)) {
    uint32_t key = sorted[k];
    if (key >= vocab)
      continue;
    if (k == 0 || sorted[k - 1] != key)
      begin[key] = static_cast<int32_t>(k);
    if (k == count - 1 || sorted[k + 1] != key)
      end[key] = static_cast<int32_t>(k + 1);
  }
}

/// Each table row sums its positions' gradients in position order, from 0,
/// exactly as the CPU kernel does; paddingId's row is 0.
__global__ void embeddingGradRows(const int32_t *positions,
                                  const int32_t *begin, const int32_t *end,
                                  const float *dOut, int64_t vocab,
                                  int64_t hidden, int64_t paddingId,
                                  float *dTable) {
  for (int64_t v = blockIdx.x; v < vocab; v += gridDim.x) {
    int32_t first = begin[v], last = v == paddingId ? first : end[v];
    for (int64_t d = threadIdx.x; d < hidden; d += blockDim.x) {
      float sum = 0.0f;
      for (int32_t p = first; p < last; ++p)
        sum += dOut[int64_t(positions[p]) * hidden + d];
      dTable[v * hidden + d] = sum;
    }
  }
}

template <typename T>
__global__ void rmsNormKernel(const float *x, const float *weight, int64_t rows,
                              int64_t hidden, double eps, T *y) {
  __shared__ double scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * hidden;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
      sum += static_cast<double>(xr[i]) * xr[i];
    float scale = static_cast<float>(
        moert::rows::inverseRms(blockSum(sum, scratch), hidden, eps));
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
      y[r * hidden + i] = moert::storedAs<T>(xr[i] * scale * weight[i]);
  }
}

/// dx of one row per block, and the row's scale s for dWeight. With
/// g = dy w: dx_j = s g_j - s^3 x_j / hidden * sum_i g_i x_i, in double. A
/// bf16 x (the stored activation) is widened as it is read.
template <typename Stored>
__global__ void rmsNormGradRows(const Stored *x, const float *weight,
                                const float *dy, int64_t rows, int64_t hidden,
                                double eps, float *dx, float *scales) {
  __shared__ double scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const Stored *xr = x + r * hidden;
    const float *dyr = dy + r * hidden;
    double squares = 0, dot = 0;
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      double value = moert::toFloat(xr[i]);
      squares += value * value;
      dot += static_cast<double>(dyr[i] * weight[i]) * value;
    }
    squares = blockSum(squares, scratch);
    dot = blockSum(dot, scratch);
    double s = moert::rows::inverseRms(squares, hidden, eps);
    double coefficient = s * s * s * dot / hidden;
    for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x)
      dx[r * hidden + j] = static_cast<float>(
          s * (dyr[j] * weight[j]) - coefficient * moert::toFloat(xr[j]));
    if (threadIdx.x == 0)
      scales[r] = static_cast<float>(s);
  }
}

__global__ void swigluKernel(const float *gate, const float *up, int64_t count,
                             float *y) {
  for (int64_t i : gridStride(count)) {
    float g = gate[i];
    float sigmoid = 1.0f / (1.0f + expf(-g));
    y[i] = g * sigmoid * up[i];
  }
}

/// silu(g) = g sigmoid(g), silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))).
__global__ void swigluGradKernel(const float *gate, const float *up,
                                 const float *dy, int64_t count, float *dGate,
                                 float *dUp) {
  for (int64_t i : gridStride(count)) {
    float g = gate[i], u = up[i], d = dy[i];
    float s = 1.0f / (1.0f + expf(-g));
    dUp[i] = d * g * s;
    dGate[i] = d * u * s * (1.0f + g * (1.0f - s));
  }
}

/// One warp a row: the row's scale once, then its elements.
__global__ void sigmoidScaleKernel(const float *x, const float *logit,
                                   int64_t rows, int64_t hidden, float *y) {
  int lane = threadIdx.x % 32;
  for (int64_t r = warpId(); r < rows; r += warpStride()) {
    float scale = static_cast<float>(moert::rows::sigmoid(logit[r]));
    for (int64_t h = lane; h < hidden; h += 32)
      y[r * hidden + h] = x[r * hidden + h] * scale;
  }
}

/// One warp a row: its dot product of dy and x gives the logit's gradient.
__global__ void sigmoidScaleGradKernel(const float *x, const float *logit,
                                       const float *dy, int64_t rows,
                                       int64_t hidden, float *dx,
                                       float *dLogit) {
  int lane = threadIdx.x % 32;
  for (int64_t r = warpId(); r < rows; r += warpStride()) {
    double s = moert::rows::sigmoid(logit[r]);
    float scale = static_cast<float>(s);
    double dot = 0;
    for (int64_t h = lane; h < hidden; h += 32) {
      int64_t i = r * hidden + h;
      dx[i] = dy[i] * scale;
      dot += static_cast<double>(dy[i]) * x[i];
    }
    dot = warpSum(dot);
    if (lane == 0)
      dLogit[r] =
          static_cast<float>(moert::rows::sigmoidScaleLogitGrad(s, dot));
  }
}

/// A gate an element (rows of one): a thread each.
__global__ void sigmoidGateKernel(const float *x, const float *logit,
                                  int64_t count, float *y) {
  for (int64_t i : gridStride(count))
    y[i] = x[i] * static_cast<float>(moert::rows::sigmoid(logit[i]));
}

__global__ void sigmoidGateGradKernel(const float *x, const float *logit,
                                      const float *dy, int64_t count, float *dx,
                                      float *dLogit) {
  for (int64_t i : gridStride(count)) {
    double s = moert::rows::sigmoid(logit[i]);
    dx[i] = dy[i] * static_cast<float>(s);
    dLogit[i] = static_cast<float>(moert::rows::sigmoidScaleLogitGrad(
        s, static_cast<double>(dy[i]) * x[i]));
  }
}

__global__ void addKernel(const float *a, const float *b, int64_t count,
                          float *y) {
  for (int64_t i : gridStride(count))
    y[i] = a[i] + b[i];
}

__global__ void mulKernel(const float *a, const float *b, int64_t count,
                          float *y) {
  for (int64_t i : gridStride(count))
    y[i] = a[i] * b[i];
}

__global__ void scaleKernel(const float *x, float factor, int64_t count,
                            float *y) {
  for (int64_t i : gridStride(count))
    y[i] = x[i] * factor;
}

//===----------------------------------------------------------------------===//
// Cross-entropy: one block per row.
//===----------------------------------------------------------------------===//

__device__ bool isCounted(const CountedTargets &counted, int32_t target) {
  return !counted.ignores || target != counted.ignoreIndex;
}

__device__ double divisorValue(const float *device, double value) {
  return device ? static_cast<double>(*device) : value;
}

/// Whether row `r` is counted with a good target; reports a bad one (the
/// branch is uniform over the block).
__device__ bool countedRow(const int32_t *targets, int64_t r, int64_t vocab,
                           const CountedTargets &counted, DeviceError *errors) {
  int32_t target = targets[r];
  if (!isCounted(counted, target))
    return false;
  if (target >= 0 && target < vocab)
    return true;
  if (threadIdx.x == 0)
    reportError(errors, DeviceCheck::Target, CheckedOp::CrossEntropy, target,
                vocab);
  return false;
}

/// The row's maximum and sum of exp(x - maximum) (in double), to every
/// thread of the block.
__device__ void rowSoftmaxStatistics(const float *row, int64_t vocab,
                                     float *floatScratch, double *doubleScratch,
                                     float &maximum, double &sum) {
  float localMax = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    localMax = fmaxf(localMax, row[v]);
  maximum = blockMax(localMax, floatScratch);
  double localSum = 0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    localSum += expf(row[v] - maximum);
  sum = blockSum(localSum, doubleScratch);
}

__global__ void crossEntropyRows(const float *logits, const int32_t *targets,
                                 int64_t rows, int64_t vocab,
                                 CountedTargets counted, DeviceError *errors,
                                 double *losses) {
  __shared__ float floatScratch[32];
  __shared__ double doubleScratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    if (!countedRow(targets, r, vocab, counted, errors)) {
      if (threadIdx.x == 0)
        losses[r] = 0;
      continue;
    }
    const float *row = logits + r * vocab;
    float maximum;
    double sum;
    rowSoftmaxStatistics(row, vocab, floatScratch, doubleScratch, maximum, sum);
    if (threadIdx.x == 0)
      losses[r] = maximum + log(sum) - row[targets[r]];
  }
}

/// One block: the row losses in a fixed order, over the divisor.
__global__ void __launch_bounds__(kReduceThreads)
    crossEntropyTotal(const double *losses, int64_t rows,
                      const float *divisorDevice, double divisorConstant,
                      float *result) {
  __shared__ double scratch[32];
  double sum = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    sum += losses[r];
  sum = blockSum(sum, scratch);
  if (threadIdx.x == 0) {
    double divisor = divisorValue(divisorDevice, divisorConstant);
    *result = divisor == 0 ? 0.0f : static_cast<float>(sum / divisor);
  }
}

/// Each counted row's softmax - onehot, scaled by dLoss / divisor, stored
/// as T (bf16: rounded); other rows (and rows with a bad target) are zero.
template <typename T>
__global__ void
crossEntropyGradRows(const float *logits, const int32_t *targets, int64_t rows,
                     int64_t vocab, CountedTargets counted,
                     const float *divisorDevice, double divisorConstant,
                     const float *dLoss, DeviceError *errors, T *dLogits) {
  __shared__ float floatScratch[32];
  __shared__ double doubleScratch[32];
  double divisor = divisorValue(divisorDevice, divisorConstant);
  double rowScale = divisor == 0 ? 0.0 : static_cast<double>(*dLoss) / divisor;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T *dRow = dLogits + r * vocab;
    if (!countedRow(targets, r, vocab, counted, errors)) {
      for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
        dRow[v] = moert::storedAs<T>(0.0f);
      continue;
    }
    const float *row = logits + r * vocab;
    float maximum;
    double sum;
    rowSoftmaxStatistics(row, vocab, floatScratch, doubleScratch, maximum, sum);
    float factor = static_cast<float>(rowScale / sum);
    int32_t target = targets[r];
    // Rounded before the target's subtraction, as the CPU rounds: fused,
    // p - 1 at a confident target would keep what the CPU's cancels.
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      float d = __fmul_rn(expf(row[v] - maximum), factor);
      dRow[v] = moert::storedAs<T>(
          v == target ? d - static_cast<float>(rowScale) : d);
    }
  }
}

/// One block; an integer count, so the order does not matter.
__global__ void __launch_bounds__(kReduceThreads)
    countTargetsKernel(const int32_t *targets, int64_t count,
                       CountedTargets counted, float *result) {
  __shared__ long long scratch[32];
  long long total = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
    total += isCounted(counted, targets[i]);
  total = blockSum(total, scratch);
  if (threadIdx.x == 0)
    *result = static_cast<float>(total);
}

} // namespace

//===----------------------------------------------------------------------===//
// Embedding.
//===----------------------------------------------------------------------===//

void moert::cuda::embedding(const float *table, int64_t vocab, int64_t hidden,
                            const int32_t *ids, int64_t count, float *out) {
  if (count == 0)
    return;
  embeddingKernel<<<blocksOver(count), kThreads, 0, stream()>>>(
      table, vocab, hidden, ids, count, deviceErrors(), out);
  checkLaunch("moert::cuda::embedding");
}

void moert::cuda::embeddingGrad(const int32_t *ids, int64_t count,
                                const float *dOut, int64_t vocab,
                                int64_t hidden, int64_t paddingId,
                                float *dTable) {
  if (vocab == 0)
    return;
  if (count > INT32_MAX || vocab >= INT32_MAX)
    moert::fail("moe.embedding: {} positions or a vocabulary of {} is too "
                "large for the CUDA kernel",
                count, vocab);
  // Stable radix sort of (id, position) by id, then each table row sums its
  // run of positions in order: the CPU's counting sort, deterministically.
  int endBit = 1;
  while ((int64_t(1) << endBit) <= vocab)
    ++endBit;
  size_t sortBytes = 0;
  check(cub::DeviceRadixSort::SortPairs(
            nullptr, sortBytes, static_cast<const uint32_t *>(nullptr),
            static_cast<uint32_t *>(nullptr),
            static_cast<const int32_t *>(nullptr),
            static_cast<int32_t *>(nullptr), static_cast<int>(count), 0, endBit,
            stream()),
        "cub::DeviceRadixSort (size)");
  Carver carver;
  size_t keysAt = carver.add<uint32_t>(count);
  size_t sortedKeysAt = carver.add<uint32_t>(count);
  size_t positionsAt = carver.add<int32_t>(count);
  size_t sortedPositionsAt = carver.add<int32_t>(count);
  size_t rangesAt = carver.add<int32_t>(2 * vocab);
  size_t sortAt = carver.add<char>(static_cast<int64_t>(sortBytes));
  char *base = carver.take();
  auto *keys = reinterpret_cast<uint32_t *>(base + keysAt);
  auto *sortedKeys = reinterpret_cast<uint32_t *>(base + sortedKeysAt);
  auto *positions = reinterpret_cast<int32_t *>(base + positionsAt);
  auto *sortedPositions = reinterpret_cast<int32_t *>(base + sortedPositionsAt);
  auto *begin = reinterpret_cast<int32_t *>(base + rangesAt);
  int32_t *end = begin + vocab;

  check(cudaMemsetAsync(begin, 0, 2 * vocab * sizeof(int32_t), stream()),
        "moert::cuda::embeddingGrad (memset)");
  if (count > 0) {
    embeddingKeys<<<blocksFor(count), kThreads, 0, stream()>>>(
        ids, count, vocab, deviceErrors(), keys, positions);
    checkLaunch("moert::cuda::embeddingKeys");
    check(cub::DeviceRadixSort::SortPairs(
              base + sortAt, sortBytes, keys, sortedKeys, positions,
              sortedPositions, static_cast<int>(count), 0, endBit, stream()),
          "cub::DeviceRadixSort");
    embeddingRanges<<<blocksFor(count), kThreads, 0, stream()>>>(
        sortedKeys, count, vocab, begin, end);
    checkLaunch("moert::cuda::embeddingRanges");
  }
  embeddingGradRows<<<blocksOver(vocab), kThreads, 0, stream()>>>(
      sortedPositions, begin, end, dOut, vocab, hidden, paddingId, dTable);
  checkLaunch("moert::cuda::embeddingGrad");
}

//===----------------------------------------------------------------------===//
// RMS norm.
//===----------------------------------------------------------------------===//

template <typename T>
void moert::cuda::rmsNorm(const float *x, const float *weight, int64_t rows,
                          int64_t hidden, double eps, T *y) {
  if (rows == 0)
    return;
  rmsNormKernel<<<blocksOver(rows), kThreads, 0, stream()>>>(x, weight, rows,
                                                             hidden, eps, y);
  checkLaunch("moert::cuda::rmsNorm");
}
template void moert::cuda::rmsNorm(const float *, const float *, int64_t,
                                   int64_t, double, float *);
template void moert::cuda::rmsNorm(const float *, const float *, int64_t,
                                   int64_t, double, bf16 *);

template <typename Stored>
void moert::cuda::rmsNormGrad(const Stored *x, const float *weight,
                              const float *dy, int64_t rows, int64_t hidden,
                              double eps, float *dx, float *dWeight) {
  ColumnChunks shape(rows, hidden);
  Carver carver;
  size_t scalesAt = carver.add<float>(rows);
  size_t partialAt = carver.add<double>(shape.chunks * hidden);
  char *base = carver.take();
  auto *scales = reinterpret_cast<float *>(base + scalesAt);
  auto *partial = reinterpret_cast<double *>(base + partialAt);
  if (rows > 0) {
    rmsNormGradRows<<<blocksOver(rows), kThreads, 0, stream()>>>(
        x, weight, dy, rows, hidden, eps, dx, scales);
    checkLaunch("moert::cuda::rmsNormGrad");
  }
  // dWeight_i = sum over rows of dy_i x_i s, column by column.
  sumOverRows(shape, RmsWeightTerm<Stored>{dy, x, scales, hidden}, partial,
              dWeight);
}
template void moert::cuda::rmsNormGrad(const float *, const float *,
                                       const float *, int64_t, int64_t, double,
                                       float *, float *);
template void moert::cuda::rmsNormGrad(const bf16 *, const float *,
                                       const float *, int64_t, int64_t, double,
                                       float *, float *);

//===----------------------------------------------------------------------===//
// Bias gradients (the linear layers' GEMMs are in LinearKernels.cu).
//===----------------------------------------------------------------------===//

void moert::cuda::biasGrad(const float *dy, int64_t rows, int64_t out,
                           float *dBias) {
  ColumnChunks shape(rows, out);
  Carver carver;
  size_t partialAt = carver.add<double>(shape.chunks * out);
  auto *partial = reinterpret_cast<double *>(carver.take() + partialAt);
  sumOverRows(shape, ColumnTerm{dy, out}, partial, dBias);
}

//===----------------------------------------------------------------------===//
// Elementwise.
//===----------------------------------------------------------------------===//

void moert::cuda::swiglu(const float *gate, const float *up, int64_t count,
                         float *y) {
  swigluKernel<<<blocksFor(count), kThreads, 0, stream()>>>(gate, up, count, y);
  checkLaunch("moert::cuda::swiglu");
}

void moert::cuda::swigluGrad(const float *gate, const float *up,
                             const float *dy, int64_t count, float *dGate,
                             float *dUp) {
  swigluGradKernel<<<blocksFor(count), kThreads, 0, stream()>>>(
      gate, up, dy, count, dGate, dUp);
  checkLaunch("moert::cuda::swigluGrad");
}

void moert::cuda::sigmoidScale(const float *x, const float *logit, int64_t rows,
                               int64_t hidden, float *y) {
  if (hidden == 1)
    sigmoidGateKernel<<<blocksFor(rows), kThreads, 0, stream()>>>(x, logit,
                                                                  rows, y);
  else
    sigmoidScaleKernel<<<warpBlocks(rows), kThreads, 0, stream()>>>(
        x, logit, rows, hidden, y);
  checkLaunch("moert::cuda::sigmoidScale");
}

void moert::cuda::sigmoidScaleGrad(const float *x, const float *logit,
                                   const float *dy, int64_t rows,
                                   int64_t hidden, float *dx, float *dLogit) {
  if (hidden == 1)
    sigmoidGateGradKernel<<<blocksFor(rows), kThreads, 0, stream()>>>(
        x, logit, dy, rows, dx, dLogit);
  else
    sigmoidScaleGradKernel<<<warpBlocks(rows), kThreads, 0, stream()>>>(
        x, logit, dy, rows, hidden, dx, dLogit);
  checkLaunch("moert::cuda::sigmoidScaleGrad");
}

void moert::cuda::add(const float *a, const float *b, int64_t count, float *y) {
  addKernel<<<blocksFor(count), kThreads, 0, stream()>>>(a, b, count, y);
  checkLaunch("moert::cuda::add");
}

void moert::cuda::mul(const float *a, const float *b, int64_t count, float *y) {
  mulKernel<<<blocksFor(count), kThreads, 0, stream()>>>(a, b, count, y);
  checkLaunch("moert::cuda::mul");
}

void moert::cuda::scale(const float *x, double factor, int64_t count,
                        float *y) {
  scaleKernel<<<blocksFor(count), kThreads, 0, stream()>>>(
      x, static_cast<float>(factor), count, y);
  checkLaunch("moert::cuda::scale");
}

//===----------------------------------------------------------------------===//
// Cross-entropy.
//===----------------------------------------------------------------------===//

void moert::cuda::crossEntropy(const float *logits, const int32_t *targets,
                               int64_t rows, int64_t vocab,
                               const CountedTargets &counted, Divisor divisor,
                               float *result) {
  // Per-row losses, then one block sums them in row order: deterministic.
  Carver carver;
  size_t lossesAt = carver.add<double>(rows);
  auto *losses = reinterpret_cast<double *>(carver.take() + lossesAt);
  if (rows > 0) {
    crossEntropyRows<<<blocksOver(rows), kThreads, 0, stream()>>>(
        logits, targets, rows, vocab, counted, deviceErrors(), losses);
    checkLaunch("moert::cuda::crossEntropy");
  }
  crossEntropyTotal<<<1, kReduceThreads, 0, stream()>>>(
      losses, rows, divisor.device, divisor.value, result);
  checkLaunch("moert::cuda::crossEntropy (total)");
}

template <typename T>
void moert::cuda::crossEntropyGrad(const float *logits, const int32_t *targets,
                                   int64_t rows, int64_t vocab,
                                   const CountedTargets &counted,
                                   Divisor divisor, const float *dLoss,
                                   T *dLogits) {
  if (rows == 0)
    return;
  crossEntropyGradRows<<<blocksOver(rows), kThreads, 0, stream()>>>(
      logits, targets, rows, vocab, counted, divisor.device, divisor.value,
      dLoss, deviceErrors(), dLogits);
  checkLaunch("moert::cuda::crossEntropyGrad");
}
template void moert::cuda::crossEntropyGrad(const float *, const int32_t *,
                                            int64_t, int64_t,
                                            const CountedTargets &, Divisor,
                                            const float *, float *);
template void moert::cuda::crossEntropyGrad(const float *, const int32_t *,
                                            int64_t, int64_t,
                                            const CountedTargets &, Divisor,
                                            const float *, bf16 *);

void moert::cuda::countTargets(const int32_t *targets, int64_t count,
                               const CountedTargets &counted, float *result) {
  countTargetsKernel<<<1, kReduceThreads, 0, stream()>>>(targets, count,
                                                         counted, result);
  checkLaunch("moert::cuda::countTargets");
}
