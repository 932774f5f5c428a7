//===- CudaGroupedGemmTest.cpp - the experts' grouped GEMMs ---------------===//
//
// groupedGemm (runtime/cuda/GroupedGemm.h) in f32 and in bf16 (each bf16
// kernel the GPU runs: mma.sync, cuBLAS over whole groups, and wgmma on
// sm_90, its operands staged by cp.async or by TMA) against a
// double-precision product of the same operands, for every transposition,
// either counted dimension, one or two problems and terms, with row strides
// that allow 16-byte copies and odd ones that do not. Values past a
// group's count are NaN, so a kernel that reads one where it counts fails
// (or zero, where the caller says so and cuBLAS sums a whole counted k);
// C starts as NaN, so rows past the count must stay so (unwritten, or
// cuBLAS's products of NaN rows: a 0 there would show) and every other
// element must be written. The expert kernels' tests cover the same GEMMs
// through the FFN; these tell a GEMM's fault from the FFN's.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"

#include "Bf16TestUtils.h"
#include "CudaTestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace moe::cudatest {
namespace {

using moert::cuda::CountedDim;
using moert::cuda::GroupedGemm;
using moert::cuda::PastCount;
using moert::cuda::TensorCoreKernel;

struct GemmCase {
  int64_t groups, m, n, k;
  /// Extra values after each stored row: 0 keeps row strides of m, n or k.
  int64_t pad;
  CountedDim counted;
  std::vector<int64_t> counts;
  /// The expert kernels run 1 x 1 (down), 2 x 1 (gate and up) and 1 x 2
  /// (the input gradient).
  int problems = 2, terms = 2;
};

std::string caseName(const GemmCase &c, bool transA, bool transB) {
  return std::to_string(c.m) + "x" + std::to_string(c.n) + "x" +
         std::to_string(c.k) + " pad " + std::to_string(c.pad) +
         (c.counted == CountedDim::M ? " counted m" : " counted k") + " " +
         std::to_string(c.problems) + "x" + std::to_string(c.terms) +
         (transA ? " A^T" : "") + (transB ? " B^T" : "");
}

/// Runs one case with operands of type T (bf16 on `kernel`) and checks it;
/// with PastCount::ZeroProducts (counted k only) the operands are zero past
/// the counts.
template <typename T>
void expectGroupedGemmMatches(const GemmCase &c, bool transA, bool transB,
                              TensorCoreKernel kernel = TensorCoreKernel::Auto,
                              PastCount pastCount = PastCount::Garbage) {
  bool zeroPastCount = pastCount == PastCount::ZeroProducts;
  std::string name =
      caseName(c, transA, transB) +
      (std::is_same_v<T, float>                   ? " f32"
       : kernel == TensorCoreKernel::WarpGroup    ? " bf16 wgmma"
       : kernel == TensorCoreKernel::WarpGroupTma ? " bf16 wgmma.tma"
       : kernel == TensorCoreKernel::Cublas       ? " bf16 cublas"
                                                  : " bf16 mma.sync") +
      (zeroPastCount ? " zero past the count" : "");
  auto run = [&](const GroupedGemm<T> &gemm) {
    if constexpr (std::is_same_v<T, float>)
      moert::cuda::groupedGemm(gemm, "grouped GEMM test");
    else
      moert::cuda::groupedGemm(gemm, "grouped GEMM test", kernel);
    synchronize();
  };
  // Stored shapes: A is [m, k] or [k, m], B [k, n] or [n, k].
  int64_t aRows = transA ? c.k : c.m, aColumns = transA ? c.m : c.k;
  int64_t bRows = transB ? c.n : c.k, bColumns = transB ? c.k : c.n;
  GroupedGemm<T> gemm;
  gemm.transA = transA;
  gemm.transB = transB;
  gemm.groups = c.groups;
  gemm.m = c.m;
  gemm.n = c.n;
  gemm.k = c.k;
  gemm.counted = c.counted;
  gemm.pastCount = pastCount;
  gemm.lda = aColumns + c.pad;
  gemm.ldb = bColumns + c.pad;
  gemm.ldc = c.n + c.pad;
  gemm.strideA = aRows * gemm.lda;
  gemm.strideB = bRows * gemm.ldb;
  gemm.strideC = c.m * gemm.ldc;
  gemm.problems = c.problems;
  gemm.terms = c.terms;

  // Operand values, NaN (or zero) past each group's count, NaN in the row
  // padding.
  auto operand = [&](bool isA, uint32_t seed) {
    int64_t rows = isA ? aRows : bRows, columns = isA ? aColumns : bColumns;
    int64_t ld = isA ? gemm.lda : gemm.ldb;
    bool kAlongRows = isA ? transA : !transB; // stored as [k][outer]
    Floats values = randomFloats(c.groups * rows * ld, seed);
    for (int64_t g = 0; g < c.groups; ++g)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t col = 0; col < ld; ++col) {
          int64_t k = kAlongRows ? r : col, outer = kAlongRows ? col : r;
          bool past = c.counted == CountedDim::K ? k >= c.counts[g]
                                                 : isA && outer >= c.counts[g];
          if (col >= columns)
            values[(g * rows + r) * ld + col] = NAN;
          else if (past)
            values[(g * rows + r) * ld + col] = zeroPastCount ? 0.0f : NAN;
        }
    return test::operandsOf<T>(values);
  };
  // Operands of problem p, term t at [p * terms + t]; the pointers of the
  // problems and terms past the counts stay null.
  std::vector<std::vector<T>> as, bs;
  for (int p = 0; p < c.problems; ++p)
    for (int t = 0; t < c.terms; ++t) {
      as.push_back(operand(true, 10 + 2 * p + t));
      bs.push_back(operand(false, 20 + 2 * p + t));
    }
  std::vector<DeviceBuffer<T>> aGpu, bGpu;
  for (size_t i = 0; i < as.size(); ++i) {
    aGpu.emplace_back(as[i]);
    bGpu.emplace_back(bs[i]);
  }
  DeviceBuffer<int64_t> countsGpu(c.counts);
  std::vector<DeviceBuffer<float>> cGpu;
  for (int p = 0; p < c.problems; ++p)
    cGpu.emplace_back(c.groups * gemm.strideC);
  gemm.counts = countsGpu.get();
  for (int p = 0; p < c.problems; ++p) {
    gemm.c[p] = cGpu[p].get();
    for (int t = 0; t < c.terms; ++t) {
      gemm.a[p][t] = aGpu[p * c.terms + t].get();
      gemm.b[p][t] = bGpu[p * c.terms + t].get();
    }
  }
  if constexpr (!std::is_same_v<T, float>) {
    // The zero products past the counts are what lets cuBLAS sum a whole
    // counted k; with NaN there the counted kernel runs.
    EXPECT_EQ(moert::cuda::runsOnCublas(gemm, kernel),
              kernel == TensorCoreKernel::Cublas &&
                  (c.counted == CountedDim::M || zeroPastCount))
        << name;
    if (kernel == TensorCoreKernel::WarpGroupTma) {
      // TMA reads rows and groups 16 bytes apart (cudaMalloc's addresses
      // are); the others take the cp.async kernel, and these cases must
      // test both.
      bool aligned = gemm.lda % 8 == 0 && gemm.ldb % 8 == 0 &&
                     gemm.strideA % 8 == 0 && gemm.strideB % 8 == 0;
      EXPECT_EQ(moert::cuda::warpGroupTmaReads(gemm), aligned) << name;
    }
  }
  run(gemm);

  for (int p = 0; p < c.problems; ++p) {
    Floats result = cGpu[p].download();
    std::vector<double> expected;
    Floats actual;
    for (int64_t g = 0; g < c.groups; ++g) {
      int64_t mLimit = c.counted == CountedDim::M ? c.counts[g] : c.m;
      int64_t kLimit = c.counted == CountedDim::K ? c.counts[g] : c.k;
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < gemm.ldc; ++j) {
          float value = result[g * gemm.strideC + i * gemm.ldc + j];
          if (i >= mLimit || j >= c.n) {
            ASSERT_TRUE(std::isnan(value))
                << name << ": wrote row " << i << " column " << j
                << " of group " << g << " (problem " << p << ")";
            continue;
          }
          double sum = 0;
          for (int t = 0; t < c.terms; ++t) {
            const std::vector<T> &a = as[p * c.terms + t],
                                 &b = bs[p * c.terms + t];
            for (int64_t l = 0; l < kLimit; ++l) {
              int64_t aAt = g * gemm.strideA +
                            (transA ? l * gemm.lda + i : i * gemm.lda + l);
              int64_t bAt = g * gemm.strideB +
                            (transB ? j * gemm.ldb + l : l * gemm.ldb + j);
              sum += double(moert::toFloat(a[aAt])) *
                     double(moert::toFloat(b[bAt]));
            }
          }
          expected.push_back(sum);
          actual.push_back(value);
        }
    }
    expectClose(actual, expected, name + " problem " + std::to_string(p),
                kGemmTolerance);
  }

  // Again: each element is one thread's sum in a fixed order, so the same
  // bits (a race between the stages would show as a difference).
  std::vector<Floats> first;
  for (int p = 0; p < c.problems; ++p)
    first.push_back(cGpu[p].download());
  run(gemm);
  for (int p = 0; p < c.problems; ++p)
    expectBitwiseEqual(cGpu[p].download(), first[p],
                       name + " again, problem " + std::to_string(p));
}

class CudaGroupedGemmTest : public CudaTest {};

// Shapes off and on the 128 x 128 and 128 x 256 tiles and 8-, 32- and 64-wide
// k-steps, row padding that keeps 16-byte copies (2) or rules them out (1, 3);
// an empty group, a partial and a full one in each; k deep enough (520:
// 8 steps of 64 and a tail of 8) that each kernel's ring of stages wraps; a
// counted k under one 64-deep step, with rows that the TMA kernel takes (its
// only step is the zeroed tail); a single group; and the expert kernels'
// other arities, one problem or one term, on the TMA kernel's shapes with a
// partial 128-row tile.
const std::vector<GemmCase> kCases = {
    {3, 200, 150, 70, 0, CountedDim::M, {0, 77, 200}},
    {3, 200, 150, 70, 3, CountedDim::M, {200, 0, 129}},
    {3, 200, 150, 70, 2, CountedDim::M, {0, 77, 200}},
    {3, 256, 136, 96, 0, CountedDim::M, {131, 256, 0}},
    {3, 150, 130, 100, 0, CountedDim::K, {0, 33, 100}},
    {3, 136, 264, 256, 0, CountedDim::K, {256, 0, 97}},
    {2, 5, 3, 7, 1, CountedDim::K, {7, 4}},
    {2, 136, 264, 520, 0, CountedDim::K, {520, 300}},
    {2, 200, 136, 520, 0, CountedDim::M, {71, 200}},
    {2, 136, 264, 64, 0, CountedDim::K, {33, 0}},
    {1, 200, 136, 96, 0, CountedDim::M, {150}},
    {2, 200, 136, 520, 0, CountedDim::M, {71, 200}, 1, 1},
    {2, 200, 264, 136, 0, CountedDim::M, {0, 150}, 2, 1},
    {2, 136, 264, 200, 0, CountedDim::K, {200, 71}, 2, 1},
    {3, 200, 136, 264, 0, CountedDim::M, {129, 0, 200}, 1, 2},
};

TEST_F(CudaGroupedGemmTest, MatchesTheProductInF32AndBf16) {
  std::vector<TensorCoreKernel> bf16Kernels = {TensorCoreKernel::MmaSync,
                                               TensorCoreKernel::Cublas};
  if (moert::cuda::warpGroupGemmAvailable()) {
    bf16Kernels.push_back(TensorCoreKernel::WarpGroup);
    bf16Kernels.push_back(TensorCoreKernel::WarpGroupTma);
  }
  for (const GemmCase &c : kCases)
    for (bool transA : {false, true})
      for (bool transB : {false, true}) {
        expectGroupedGemmMatches<float>(c, transA, transB);
        for (TensorCoreKernel kernel : bf16Kernels)
          expectGroupedGemmMatches<moert::bf16>(c, transA, transB, kernel);
        // cuBLAS sums a counted k whole only where the products past the
        // counts are zero (with NaN there it ran the counted kernel above).
        if (c.counted == CountedDim::K)
          expectGroupedGemmMatches<moert::bf16>(c, transA, transB,
                                                TensorCoreKernel::Cublas,
                                                PastCount::ZeroProducts);
      }
}

// Where the wgmma kernel is not available, asking for it is an error that
// says why, not a launch of code that is not there.
TEST_F(CudaGroupedGemmTest, RefusesTheWarpGroupKernelWhereItIsNotAvailable) {
  if (moert::cuda::warpGroupGemmAvailable())
    GTEST_SKIP() << "this GPU runs the wgmma kernel";
  std::string error = errorOf([] {
    moert::cuda::groupedGemm(GroupedGemm<moert::bf16>{}, "grouped GEMM test",
                             TensorCoreKernel::WarpGroup);
  });
  EXPECT_TRUE(test::contains(error, "needs an sm_90 GPU")) << error;
}

// MOE_CUDA_GROUPED_GEMM=wgmma.tma picks the TMA kernel where wgmma runs,
// and says why not elsewhere.
TEST_F(CudaGroupedGemmTest, TheVariablePicksTheTmaKernelWhereWgmmaRuns) {
  std::string error;
  TensorCoreKernel kernel = TensorCoreKernel::Auto;
  {
    KernelChoice choice("MOE_CUDA_GROUPED_GEMM", "wgmma.tma");
    error = errorOf([&] { kernel = moert::cuda::autoTensorCoreKernel(); });
  }
  if (moert::cuda::warpGroupGemmAvailable())
    EXPECT_EQ(kernel, TensorCoreKernel::WarpGroupTma) << error;
  else
    EXPECT_TRUE(test::contains(
        error, "MOE_CUDA_GROUPED_GEMM=wgmma.tma: the wgmma grouped GEMM "
               "needs an sm_90 GPU"))
        << error;
}

// MOE_CUDA_GROUPED_GEMM=mma.sync keeps the mma.sync kernel and =cublas
// picks cuBLAS (no GPU needed to decide), and a value it does not know is
// an error naming it.
TEST(TensorCoreKernelChoiceTest, TheVariablePicksAKernelAndNamesABadValue) {
  {
    KernelChoice choice("MOE_CUDA_GROUPED_GEMM", "mma.sync");
    EXPECT_EQ(moert::cuda::autoTensorCoreKernel(), TensorCoreKernel::MmaSync);
  }
  {
    KernelChoice choice("MOE_CUDA_GROUPED_GEMM", "cublas");
    EXPECT_EQ(moert::cuda::autoTensorCoreKernel(), TensorCoreKernel::Cublas);
  }
  KernelChoice choice("MOE_CUDA_GROUPED_GEMM", "wgmma");
  std::string error = errorOf([] { moert::cuda::autoTensorCoreKernel(); });
  EXPECT_TRUE(test::contains(error, "MOE_CUDA_GROUPED_GEMM=wgmma: expected "
                                    "auto, mma.sync, wgmma.tma or cublas"))
      << error;
}

// cuBLAS runs a gemm over whole groups where the count limits M, and where
// it limits K only if the caller vouches that the products past the counts
// are zero; no other kernel does (no GPU needed to decide).
TEST(TensorCoreKernelChoiceTest, CublasSumsACountedKOnlyOverZeroProducts) {
  GroupedGemm<moert::bf16> gemm;
  EXPECT_TRUE(moert::cuda::runsOnCublas(gemm, TensorCoreKernel::Cublas));
  gemm.counted = CountedDim::K;
  EXPECT_FALSE(moert::cuda::runsOnCublas(gemm, TensorCoreKernel::Cublas));
  gemm.pastCount = PastCount::ZeroProducts;
  EXPECT_TRUE(moert::cuda::runsOnCublas(gemm, TensorCoreKernel::Cublas));
  for (TensorCoreKernel other :
       {TensorCoreKernel::MmaSync, TensorCoreKernel::WarpGroup,
        TensorCoreKernel::WarpGroupTma})
    EXPECT_FALSE(moert::cuda::runsOnCublas(gemm, other));
}

} // namespace
} // namespace moe::cudatest
