//===- GroupedGemmBench.cu - the experts' grouped GEMM against cuBLAS -----===//
//
// The expert-sized GEMMs of benchmarks/gpu/moe-2b.json (16 experts, 5120
// rows each at capacity factor 1.25, hidden 2048, expert hidden 1408), every
// expert full: what our experts run (our grouped GEMM, counts read on the
// device: CUDA cores in f32, tensor cores in bf16, where an sm_90 GPU
// runs wgmma and shows mma.sync, the other GPUs' kernel, and wgmma fed by
// TMA beside it; in bf16 also our launch of cuBLAS over whole capacities,
// MOE_CUDA_GROUPED_GEMM=cublas), cuBLAS's grouped GEMM
// (cublasGemmGroupedBatchedEx, counts given on the host, so it cannot be
// captured in a graph with device counts), cuBLAS's strided batched GEMM
// (the whole capacities whatever the counts), and one dense cuBLAS GEMM of
// equal FLOPs; in f32 without TF32, and with bf16 operands (f32
// accumulation; cuBLAS on tensor cores). Prints TFLOP/s and the ratios to
// the dense GEMM, and ours with the experts a quarter full (a dropless
// layer's queues, sized for every token, hold about that or less), whose
// rate counts the filled rows' FLOPs only, and ours in the weight
// gradients' shape (the reduction over each expert's rows, both operands
// stored k-major).
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "GroupedGemm.h"
#include "Support.h"

#include "moert/Error.h"

#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

using namespace moert::cuda;
using namespace moe::gpubench;

namespace {

constexpr int64_t kExperts = 16, kRows = 5120, kHidden = 2048, kFfn = 1408;

/// cuBLAS's name of an operand type, and the compute type we use with it.
template <typename T> constexpr cudaDataType_t kType = CUDA_R_32F;
template <> constexpr cudaDataType_t kType<moert::bf16> = CUDA_R_16BF;
template <typename T>
constexpr cublasComputeType_t kCompute = CUBLAS_COMPUTE_32F_PEDANTIC;
template <>
constexpr cublasComputeType_t kCompute<moert::bf16> = CUBLAS_COMPUTE_32F;

template <typename T> void measure(const char *label) {
  T *x = deviceArray<T>(kExperts * kRows * kHidden, moert::storedAs<T>(0.01f));
  T *w = deviceArray<T>(kExperts * kFfn * kHidden, moert::storedAs<T>(0.02f));
  float *y = deviceArray<float>(kExperts * kRows * kFfn, 0.0f);
  int64_t *counts = deviceArray<int64_t>(kExperts, kRows);
  double flops = 2.0 * kExperts * kRows * kFfn * kHidden;
  // Pedantic f32 on blas(), tensor cores for bf16 on mixedBlas().
  cublasHandle_t handle = std::is_same_v<T, float> ? blas() : mixedBlas();

  // y_e [rows, ffn] = x_e [rows, hidden] w_e [ffn, hidden]^T: the gate and
  // up projections' shape.
  GroupedGemm<T> gemm;
  gemm.transB = true;
  gemm.groups = kExperts;
  gemm.m = kRows;
  gemm.n = kFfn;
  gemm.k = kHidden;
  gemm.counts = counts;
  gemm.lda = kHidden;
  gemm.ldb = kHidden;
  gemm.ldc = kFfn;
  gemm.strideA = kRows * kHidden;
  gemm.strideB = kFfn * kHidden;
  gemm.strideC = kRows * kFfn;
  gemm.a[0][0] = x;
  gemm.b[0][0] = w;
  gemm.c[0] = y;
  auto timeOurs = [&](const GroupedGemm<T> &problem, TensorCoreKernel kernel) {
    return timeIt([&] {
      if constexpr (std::is_same_v<T, float>)
        groupedGemm(problem, "grouped GEMM benchmark");
      else
        groupedGemm(problem, "grouped GEMM benchmark", kernel);
    });
  };
  double ours = timeOurs(gemm, TensorCoreKernel::Auto);
  // The sm_80 kernel where the GPU runs another one.
  bool otherKernel =
      !std::is_same_v<T, float> && moert::cuda::warpGroupGemmAvailable();
  double mmaSync =
      otherKernel ? timeOurs(gemm, TensorCoreKernel::MmaSync) : 0.0;
  int64_t *quarterCounts = deviceArray<int64_t>(kExperts, kRows / 4);
  GroupedGemm<T> quarterFull = gemm;
  quarterFull.counts = quarterCounts;
  double quarter = timeOurs(quarterFull, TensorCoreKernel::Auto);

  // dW_e [ffn, hidden] = dy_e^T x_e, dy_e [rows, ffn], summed over the
  // expert's rows: the weight gradients' shape.
  GroupedGemm<T> weightGrad;
  weightGrad.transA = true;
  weightGrad.groups = kExperts;
  weightGrad.m = kFfn;
  weightGrad.n = kHidden;
  weightGrad.k = kRows;
  weightGrad.counts = counts;
  weightGrad.counted = CountedDim::K;
  weightGrad.lda = kFfn;
  weightGrad.ldb = kHidden;
  weightGrad.ldc = kHidden;
  weightGrad.strideA = kRows * kFfn;
  weightGrad.strideB = kRows * kHidden;
  weightGrad.strideC = kFfn * kHidden;
  T *dy = deviceArray<T>(kExperts * kRows * kFfn, moert::storedAs<T>(0.01f));
  float *dw = deviceArray<float>(kExperts * kFfn * kHidden, 0.0f);
  weightGrad.a[0][0] = dy;
  weightGrad.b[0][0] = x;
  weightGrad.c[0] = dw;
  double weightGradSeconds = timeOurs(weightGrad, TensorCoreKernel::Auto);

  // cuBLAS's grouped GEMM: column-major, so C^T = W X^T per expert.
  std::vector<const void *> as, bs;
  std::vector<void *> cs;
  for (int64_t e = 0; e < kExperts; ++e) {
    as.push_back(w + e * kFfn * kHidden);
    bs.push_back(x + e * kRows * kHidden);
    cs.push_back(y + e * kRows * kFfn);
  }
  const void **aDevice = deviceCopy(as), **bDevice = deviceCopy(bs);
  void **cDevice = deviceCopy(cs);
  cublasOperation_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
  int m = kFfn, n = kRows, k = kHidden, lda = kHidden, ldb = kHidden,
      ldc = kFfn, groupSize = kExperts;
  float alpha = 1, beta = 0;
  // cuBLAS documents fewer type combinations for its grouped GEMM than
  // for cublasGemmEx; a refusal is reported, not fatal.
  double grouped = 0;
  std::string refused;
  try {
    grouped = timeIt([&] {
      check(cublasGemmGroupedBatchedEx(
                handle, &transA, &transB, &m, &n, &k, &alpha,
                reinterpret_cast<const void *const *>(aDevice), kType<T>, &lda,
                reinterpret_cast<const void *const *>(bDevice), kType<T>, &ldb,
                &beta, cDevice, CUDA_R_32F, &ldc, 1, &groupSize, kCompute<T>),
            "cublasGemmGroupedBatchedEx");
    });
  } catch (const moert::Error &error) {
    refused = error.what();
  }

  // cuBLAS's strided batched GEMM: every expert's whole capacity.
  double batched = timeIt([&] {
    check(cublasGemmStridedBatchedEx(
              handle, CUBLAS_OP_T, CUBLAS_OP_N, kFfn, kRows, kHidden, &alpha, w,
              kType<T>, kHidden, kFfn * kHidden, x, kType<T>, kHidden,
              kRows * kHidden, &beta, y, CUDA_R_32F, kFfn, kRows * kFfn,
              kExperts, kCompute<T>, CUBLAS_GEMM_DEFAULT),
          "cublasGemmStridedBatchedEx");
  });

  // One dense GEMM of the same FLOPs: all experts' rows against one
  // weight.
  double dense = timeIt([&] {
    check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, kFfn, kExperts * kRows,
                       kHidden, &alpha, w, kType<T>, kHidden, x, kType<T>,
                       kHidden, &beta, y, CUDA_R_32F, kFfn, kCompute<T>,
                       CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
  });

  auto tflops = [&](double seconds) { return flops / seconds / 1e12; };
  std::printf("expert GEMMs: %lld experts x [%lld x %lld] x [%lld x %lld]^T, "
              "%s\n",
              (long long)kExperts, (long long)kRows, (long long)kHidden,
              (long long)kFfn, (long long)kHidden, label);
  std::printf("  dense cuBLAS GEMM of equal FLOPs: %.1f TFLOP/s\n",
              tflops(dense));
  std::printf("  ours (grouped GEMM, counts read on the device): %.1f "
              "TFLOP/s, %.0f%% of dense (target >= 85%%)\n",
              tflops(ours), 100 * dense / ours);
  if (otherKernel)
    std::printf("  ours on mma.sync (other GPUs' kernel): %.1f TFLOP/s, "
                "%.0f%% of dense\n",
                tflops(mmaSync), 100 * dense / mmaSync);
  std::printf("  ours, experts a quarter full: %.1f TFLOP/s of filled rows, "
              "%.2fx the full experts' time\n",
              tflops(quarter * 4), quarter / ours);
  std::printf("  ours, weight gradients (counted k, A^T): %.1f TFLOP/s, "
              "%.0f%% of dense\n",
              tflops(weightGradSeconds), 100 * dense / weightGradSeconds);
  std::printf("  cublasGemmStridedBatchedEx (whole capacities): %.1f "
              "TFLOP/s, %.0f%% of dense\n",
              tflops(batched), 100 * dense / batched);
  if (refused.empty())
    std::printf("  cublasGemmGroupedBatchedEx (host counts): %.1f TFLOP/s, "
                "%.0f%% of dense\n",
                tflops(grouped), 100 * dense / grouped);
  else
    std::printf("  cublasGemmGroupedBatchedEx (host counts): not run: %s\n",
                refused.c_str());
  if constexpr (!std::is_same_v<T, float>) {
    // The weight gradients sum whole capacities only where the products
    // past the counts are zero (every row counts here).
    GroupedGemm<T> wholeWeightGrad = weightGrad;
    wholeWeightGrad.pastCount = PastCount::ZeroProducts;
    double cublas = timeOurs(gemm, TensorCoreKernel::Cublas);
    double cublasWeightGrad =
        timeOurs(wholeWeightGrad, TensorCoreKernel::Cublas);
    std::printf("  ours on cuBLAS (MOE_CUDA_GROUPED_GEMM=cublas, whole "
                "capacities): %.1f TFLOP/s, %.0f%% of dense; weight gradients "
                "%.1f TFLOP/s, %.0f%% of dense\n",
                tflops(cublas), 100 * dense / cublas, tflops(cublasWeightGrad),
                100 * dense / cublasWeightGrad);
  }
  // Last, so that a fault of the TMA kernel (which has not yet run on a
  // GPU where the others were measured) leaves the figures above printed.
  if (otherKernel) {
    std::fflush(stdout);
    double tma = timeOurs(gemm, TensorCoreKernel::WarpGroupTma);
    double tmaWeightGrad = timeOurs(weightGrad, TensorCoreKernel::WarpGroupTma);
    std::printf("  ours on wgmma, TMA copies (MOE_CUDA_GROUPED_GEMM=wgmma.tma):"
                " %.1f TFLOP/s, %.0f%% of dense; weight gradients %.1f "
                "TFLOP/s, %.0f%% of dense\n",
                tflops(tma), 100 * dense / tma, tflops(tmaWeightGrad),
                100 * dense / tmaWeightGrad);
  }
  for (void *array :
       {static_cast<void *>(x), static_cast<void *>(w), static_cast<void *>(y),
        static_cast<void *>(dy), static_cast<void *>(dw),
        static_cast<void *>(counts), static_cast<void *>(quarterCounts),
        static_cast<void *>(aDevice), static_cast<void *>(bDevice),
        static_cast<void *>(cDevice)})
    check(cudaFree(array), "cudaFree");
}

int run() {
  measure<float>("f32 (no TF32)");
  measure<moert::bf16>("bf16 operands, f32 accumulation");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  return benchmarkMain(
      argc, argv, "moe-grouped-gemm-bench",
      "Times the experts' grouped GEMM against cuBLAS on this machine's GPU",
      run);
}
