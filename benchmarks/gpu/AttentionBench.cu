//===- AttentionBench.cu - bf16 attention at the benchmark's shape --------===//
//
// The causal attention of a layer of benchmarks/gpu/moe-2b.json (16
// sequences of 2048 tokens, 16 heads of 128) over bf16 operands, as the
// bf16 train step runs it: the forward (a bf16 result and each row's lse)
// and the backward (dQ, dK, dV from the forward's result and lse), on each
// of the kernels this GPU runs (MOE_CUDA_ATTENTION: mma.sync, and wgmma on
// an sm_90 GPU). Prints their times and TFLOP/s (causal: half the full
// products' FLOPs; the backward counted as 2.5 forwards, FlashAttention's
// convention) and, for a kernel after the first, how far its results are
// from the first's, relative to each tensor's largest value.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "GroupedGemm.h"

#include "moert/Bf16.h"
#include "moert/CudaKernels.h"
#include "moert/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace moe::gpubench;
using moert::bf16;

namespace {

constexpr int64_t kBatch = 16, kSeq = 2048, kHeads = 16, kHeadDim = 128;
constexpr int64_t kValues = kBatch * kSeq * kHeads * kHeadDim;
constexpr int64_t kRowsOfLse = kBatch * kHeads * kSeq;

/// Values in [-1, 1) from a fixed linear congruential sequence: varied
/// scores, the same on every run.
std::vector<bf16> operand(uint32_t seed) {
  std::vector<bf16> values(kValues);
  uint32_t state = seed;
  for (bf16 &value : values) {
    state = state * 1664525u + 1013904223u;
    value = moert::toBf16(static_cast<float>(state >> 8) / (1 << 23) - 1.0f);
  }
  return values;
}

template <typename T>
std::vector<float> download(const T *device, int64_t count) {
  std::vector<T> host(count);
  check(cudaMemcpyAsync(host.data(), device, count * sizeof(T),
                        cudaMemcpyDeviceToHost, stream()),
        "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
  std::vector<float> values;
  values.reserve(count);
  for (const T &value : host)
    values.push_back(moert::toFloat(value));
  return values;
}

/// The largest |a - b| over the largest |b|.
double relativeDifference(const std::vector<float> &a,
                          const std::vector<float> &b) {
  double difference = 0, largest = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference = std::max(difference, std::fabs(double(a[i]) - b[i]));
    largest = std::max(largest, std::fabs(double(b[i])));
  }
  return largest > 0 ? difference / largest : difference;
}

struct Results {
  std::vector<float> out, dq, dk, dv;
};

int run() {
  bf16 *q = deviceCopy(operand(1)), *k = deviceCopy(operand(2));
  bf16 *v = deviceCopy(operand(3)), *dOut = deviceCopy(operand(4));
  bf16 *out = deviceArray<bf16>(kValues, bf16{});
  float *lse = deviceArray<float>(kRowsOfLse, 0.0f);
  float *dq = deviceArray<float>(kValues, 0.0f);
  float *dk = deviceArray<float>(kValues, 0.0f);
  float *dv = deviceArray<float>(kValues, 0.0f);
  auto forward = [&] {
    moert::cuda::attention(q, k, v, nullptr, kBatch, kSeq, kHeads, kHeads,
                           kHeadDim, moert::AttentionMask{true}, out, lse);
  };
  auto backward = [&] {
    moert::cuda::attentionGrad(q, k, v, out, lse, dOut, kBatch, kSeq, kHeads,
                               kHeads, kHeadDim, moert::AttentionMask{true}, dq,
                               dk, dv);
  };
  double forwardFlops = 2.0 * kBatch * kHeads * kSeq * kSeq * kHeadDim;
  std::printf("attention: %lld sequences of %lld tokens, %lld heads of %lld, "
              "causal, bf16 operands (f32 accumulation)\n",
              (long long)kBatch, (long long)kSeq, (long long)kHeads,
              (long long)kHeadDim);

  std::vector<std::string> kernels = {"mma.sync"};
  if (moert::cuda::warpGroupGemmAvailable())
    kernels.push_back("wgmma");
  Results first;
  for (const std::string &kernel : kernels) {
    // Printed so far stays printed if this kernel faults.
    std::fflush(stdout);
    setenv("MOE_CUDA_ATTENTION", kernel.c_str(), 1);
    double forwardSeconds = timeIt(forward, 2, 10);
    // The backward reads the forward's out and lse, as the step does.
    forward();
    double backwardSeconds = timeIt(backward, 2, 10);
    std::printf("  %s: forward %.2f ms, %.1f TFLOP/s; backward %.2f ms, "
                "%.1f TFLOP/s\n",
                kernel.c_str(), 1e3 * forwardSeconds,
                forwardFlops / forwardSeconds / 1e12, 1e3 * backwardSeconds,
                2.5 * forwardFlops / backwardSeconds / 1e12);
    Results results{download(out, kValues), download(dq, kValues),
                    download(dk, kValues), download(dv, kValues)};
    if (kernel == kernels.front()) {
      first = std::move(results);
      continue;
    }
    std::printf("    largest difference from %s: out %.1e, dq %.1e, dk "
                "%.1e, dv %.1e\n",
                kernels.front().c_str(),
                relativeDifference(results.out, first.out),
                relativeDifference(results.dq, first.dq),
                relativeDifference(results.dk, first.dk),
                relativeDifference(results.dv, first.dv));
  }
  unsetenv("MOE_CUDA_ATTENTION");
  for (void *array :
       {static_cast<void *>(q), static_cast<void *>(k), static_cast<void *>(v),
        static_cast<void *>(dOut), static_cast<void *>(out),
        static_cast<void *>(lse), static_cast<void *>(dq),
        static_cast<void *>(dk), static_cast<void *>(dv)})
    check(cudaFree(array), "cudaFree");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  return benchmarkMain(argc, argv, "moe-attention-bench",
                       "Times the bf16 attention kernels at the GPU "
                       "benchmark's shape on this machine's GPU",
                       run);
}
