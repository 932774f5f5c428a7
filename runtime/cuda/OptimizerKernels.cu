//===- OptimizerKernels.cu - f32 CUDA optimizer kernels -------------------===//
//
// The optimizer ops of CudaKernels.h. The step, the learning rate and the
// gradient norm stay on the device: the kernels read them there, so that a
// whole step can be captured in a graph. The scalar formulas are RowMath.h's,
// shared with the CPU kernels.
//
// globalNorm is deterministic: per tensor a fixed number of blocks write
// partial sums of squares (in double), which one block adds in a fixed
// order.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"
#include "moert/RowMath.h"

#include "Support.h"

#include <algorithm>

using namespace moert::cuda;

namespace {

/// Blocks per tensor of globalNorm's first pass: enough to stream the
/// largest tensor at full bandwidth, few enough for small partials.
constexpr int kNormBlocks = 128;

__device__ double warpSum(double value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

/// The sum over the block in a fixed tree, to every thread.
__device__ double blockSum(double value) {
  __shared__ double scratch[32];
  value = warpSum(value);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0)
    scratch[warp] = value;
  __syncthreads();
  value = lane < int(blockDim.x / 32) ? scratch[lane] : 0.0;
  return warpSum(value);
}

__global__ void lrScheduleKernel(const int64_t *step, double maxLr,
                                 double minLr, int64_t warmupSteps,
                                 int64_t decaySteps, moert::LrDecay decay,
                                 float *result) {
  *result = static_cast<float>(moert::rows::learningRate(
      *step, maxLr, minLr, warmupSteps, decaySteps, decay));
}

/// partial[(first + y) * kNormBlocks + x]: block x's sum of squares of
/// tensor first + y (blockIdx.y), over elements x * blockDim.x + thread +
/// n * kNormBlocks * blockDim.x.
__global__ void sumOfSquares(ParameterArray<const float *, kListChunk> tensors,
                             ParameterArray<int64_t, kListChunk> sizes,
                             int64_t first, double *partial) {
  const float *x = tensors.items[blockIdx.y];
  int64_t size = sizes.items[blockIdx.y];
  double sum = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < size;
       i += int64_t(kNormBlocks) * blockDim.x)
    sum += static_cast<double>(x[i]) * x[i];
  sum = blockSum(sum);
  if (threadIdx.x == 0)
    partial[(first + blockIdx.y) * kNormBlocks + blockIdx.x] = sum;
}

/// One block: sqrt of the partials' sum, in a fixed order.
__global__ void __launch_bounds__(kReduceThreads)
    normTotal(const double *partial, int64_t count, float *result) {
  double sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
    sum += partial[i];
  sum = blockSum(sum);
  if (threadIdx.x == 0)
    *result = static_cast<float>(sqrt(sum));
}

__global__ void addInt64Kernel(const int64_t *a, const int64_t *b,
                               int64_t count, int64_t *y) {
  for (int64_t i : gridStride(count))
    y[i] = a[i] + b[i];
}

/// One element of the CPU's element loop (OptimizerKernels.cpp). Its
/// inputs are read (passed by value) before its outputs are written, so
/// the outputs may alias them.
struct AdamWUpdate {
  moert::rows::AdamWScalars s;
  __device__ void operator()(float param, float grad, float expAvg,
                             float expAvgSq, float &newParam, float &newExpAvg,
                             float &newExpAvgSq) const {
    float g = s.scale * grad;
    float m = s.beta1 * expAvg + (1.0f - s.beta1) * g;
    float v = s.beta2 * expAvgSq + (1.0f - s.beta2) * g * g;
    newParam = param * s.decay -
               s.stepSize * m / (sqrtf(v) / s.rootCorrection2 + s.eps);
    newExpAvg = m;
    newExpAvgSq = v;
  }
};

/// AdamW is memory-bound (seven arrays): where every array allows it, a
/// thread updates four elements through 16-byte accesses; the rest, one
/// at a time.
__global__ void adamwKernel(const float *param, const float *grad,
                            const float *expAvg, const float *expAvgSq,
                            int64_t count, bool quads, const float *lr,
                            const float *gradNorm, const int64_t *step,
                            AdamWConfig config, float *newParam,
                            float *newExpAvg, float *newExpAvgSq) {
  // The scalars once per block (two pows in double), from the device's lr,
  // gradient norm and step.
  __shared__ moert::rows::AdamWScalars shared;
  if (threadIdx.x == 0)
    shared = moert::rows::adamwScalars(config, *lr, *gradNorm, *step);
  __syncthreads();
  AdamWUpdate update{shared};
  int64_t first = 0;
  if (quads) {
    first = count / 4 * 4;
    for (int64_t i : gridStride(count / 4)) {
      float4 p = reinterpret_cast<const float4 *>(param)[i];
      float4 g = reinterpret_cast<const float4 *>(grad)[i];
      float4 m = reinterpret_cast<const float4 *>(expAvg)[i];
      float4 v = reinterpret_cast<const float4 *>(expAvgSq)[i];
      float4 newP, newM, newV;
      update(p.x, g.x, m.x, v.x, newP.x, newM.x, newV.x);
      update(p.y, g.y, m.y, v.y, newP.y, newM.y, newV.y);
      update(p.z, g.z, m.z, v.z, newP.z, newM.z, newV.z);
      update(p.w, g.w, m.w, v.w, newP.w, newM.w, newV.w);
      reinterpret_cast<float4 *>(newParam)[i] = newP;
      reinterpret_cast<float4 *>(newExpAvg)[i] = newM;
      reinterpret_cast<float4 *>(newExpAvgSq)[i] = newV;
    }
  }
  for (int64_t i : gridStride(count - first)) {
    int64_t j = first + i;
    update(param[j], grad[j], expAvg[j], expAvgSq[j], newParam[j], newExpAvg[j],
           newExpAvgSq[j]);
  }
}

} // namespace

void moert::cuda::lrSchedule(const int64_t *step, double maxLr, double minLr,
                             int64_t warmupSteps, int64_t decaySteps,
                             LrDecay decay, float *result) {
  lrScheduleKernel<<<1, 1, 0, stream()>>>(step, maxLr, minLr, warmupSteps,
                                          decaySteps, decay, result);
  checkLaunch("moert::cuda::lrSchedule");
}

void moert::cuda::globalNorm(const float *const *tensors, const int64_t *sizes,
                             int64_t count, float *result) {
  auto *partial = static_cast<double *>(
      workspace(std::max<int64_t>(count, 1) * kNormBlocks * sizeof(double)));
  // The lists travel in the launches' parameters, kListChunk at a time.
  for (int64_t first = 0; first < count; first += kListChunk) {
    int64_t chunk = std::min<int64_t>(kListChunk, count - first);
    ParameterArray<const float *, kListChunk> chunkTensors{};
    ParameterArray<int64_t, kListChunk> chunkSizes{};
    for (int64_t t = 0; t < chunk; ++t) {
      chunkTensors.items[t] = tensors[first + t];
      chunkSizes.items[t] = sizes[first + t];
    }
    dim3 grid(kNormBlocks, static_cast<unsigned>(chunk));
    sumOfSquares<<<grid, kThreads, 0, stream()>>>(chunkTensors, chunkSizes,
                                                  first, partial);
    checkLaunch("moert::cuda::globalNorm");
  }
  normTotal<<<1, kReduceThreads, 0, stream()>>>(partial, count * kNormBlocks,
                                                result);
  checkLaunch("moert::cuda::globalNorm (total)");
}

void moert::cuda::addInt64(const int64_t *a, const int64_t *b, int64_t count,
                           int64_t *y) {
  addInt64Kernel<<<blocksFor(count), kThreads, 0, stream()>>>(a, b, count, y);
  checkLaunch("moert::cuda::addInt64");
}

void moert::cuda::adamw(const float *param, const float *grad,
                        const float *expAvg, const float *expAvgSq,
                        int64_t count, const float *lr, const float *gradNorm,
                        const int64_t *step, const AdamWConfig &config,
                        float *newParam, float *newExpAvg, float *newExpAvgSq) {
  bool quads = aligned16(param) && aligned16(grad) && aligned16(expAvg) &&
               aligned16(expAvgSq) && aligned16(newParam) &&
               aligned16(newExpAvg) && aligned16(newExpAvgSq);
  adamwKernel<<<blocksFor(quads ? count / 4 : count), kThreads, 0, stream()>>>(
      param, grad, expAvg, expAvgSq, count, quads, lr, gradNorm, step, config,
      newParam, newExpAvg, newExpAvgSq);
  checkLaunch("moert::cuda::adamw");
}
