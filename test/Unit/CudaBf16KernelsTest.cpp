//===- CudaBf16KernelsTest.cpp - mixed-precision CUDA kernels -------------===//
//
// The CUDA kernels on bf16 operands against the CPU's (CpuBf16KernelsTest
// checks those against the reference; CudaKernelsTest the linear layers'):
// the conversions bit for bit, and the expert FFN, whose projections and
// intermediates both round to bf16 at the same points, to the bf16
// tolerance, on each grouped GEMM kernel the GPU runs (MOE_CUDA_GROUPED_GEMM):
// the counted ones read no row past the counts (they hold NaN) and write no
// output row there, cuBLAS sums whole capacities. Attention on tensor cores
// rounds its probabilities at another point than the CPU (before normalizing)
// and is compared to a wider tolerance, on each of its kernels that the GPU
// runs (MOE_CUDA_ATTENTION: mma.sync, and wgmma on an sm_90 GPU).
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/CudaKernels.h"

#include "Bf16TestUtils.h"
#include "CudaTestUtils.h"
#include "GroupedGemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace moe::cudatest;
using moe::test::bitPatternSpread;
using moe::test::bitsOf;
using moe::test::expectBf16Close;
using moe::test::expectBf16RoundedAlike;
using moe::test::Halves;
using moe::test::narrowed;
using moe::test::widened;
using moert::bf16;

namespace {

class CudaBf16KernelsTest : public CudaTest {};

/// Both sides of these comparisons sum in f32 with rounding errors of their
/// own (the CPU tests compare with an exact reference), tensor cores among
/// them: fewer values agree to 1e-5 than there (99.3%), though far more
/// than when rounding at other points (0.4%).
constexpr double kNearlyAll = 0.9;

/// The forward's online softmax rounds each probability to bf16 relative to
/// the running maximum, before dividing by the row's sum; the CPU rounds the
/// normalized one. Each term of out = sum_j p_j v_j then differs by up to
/// 2^-8 relative, and dQ, dK inherit it through delta = dOut . out. Wrong
/// fragments or tiles miss by the values' own size.
constexpr double kAttentionTolerance = 1e-2;

/// The log-sum-exp of the scores is f32 math on exact bf16 products on both
/// targets: a wrong max or sum shows far above this, and the backward, fed
/// the CPU's lse below, would not show it.
constexpr double kLseTolerance = 1e-4;

/// The bf16 attention kernels this GPU runs.
std::vector<const char *> attentionKernels() {
  std::vector<const char *> kernels = {"mma.sync"};
  if (moert::cuda::warpGroupGemmAvailable())
    kernels.push_back("wgmma");
  return kernels;
}

/// The grouped GEMM kernels this GPU runs besides Auto's.
std::vector<const char *> otherGroupedGemmKernels() {
  std::vector<const char *> kernels = {"cublas"};
  if (moert::cuda::warpGroupGemmAvailable()) {
    kernels.push_back("mma.sync");
    kernels.push_back("wgmma.tma");
  }
  return kernels;
}

std::vector<uint16_t> bitsOf(const Halves &values) {
  std::vector<uint16_t> bits;
  for (bf16 value : values)
    bits.push_back(value.bits);
  return bits;
}

} // namespace

TEST_F(CudaBf16KernelsTest, ConvertMatchesTheCpuBitForBit) {
  Floats values = bitPatternSpread();
  int64_t count = static_cast<int64_t>(values.size());
  Halves narrow(values.size());
  cpu::convert(values.data(), count, narrow.data());
  Floats wide = output(count);
  cpu::convert(narrow.data(), count, wide.data());
  DeviceBuffer<float> valuesGpu(values);
  // Both ways of the kernels: four values a thread where the arrays are
  // aligned for it (whole, and with a tail of 1 to 3), and one at a time
  // where they start off the alignment.
  for (int64_t offset : {0, 1})
    for (int64_t tail : {0, 1, 3}) {
      int64_t length = count - offset - tail;
      std::string name = "from " + std::to_string(offset) + ", " +
                         std::to_string(length) + " values";
      DeviceBuffer<bf16> narrowGpu(count);
      gpu::convert(valuesGpu.get() + offset, length, narrowGpu.get() + offset);
      Halves narrowFromGpu = narrowGpu.download();
      expectExact(bitsOf(Halves(narrowFromGpu.begin() + offset,
                                narrowFromGpu.begin() + offset + length)),
                  bitsOf(Halves(narrow.begin() + offset,
                                narrow.begin() + offset + length)),
                  "to bf16 " + name);

      DeviceBuffer<float> wideGpu(count);
      gpu::convert(narrowGpu.get() + offset, length, wideGpu.get() + offset);
      Floats wideFromGpu = wideGpu.download();
      std::vector<uint32_t> expected, actual;
      for (int64_t i = offset; i < offset + length; ++i) {
        expected.push_back(bitsOf(wide[i]));
        actual.push_back(bitsOf(wideFromGpu[i]));
      }
      expectExact(actual, expected, "to f32 " + name);
    }
}

namespace {

/// The forward and backward of `c` on the chosen kernels against the CPU.
void checkAttention(const AttentionCase &c, moert::AttentionMask mask,
                    const std::string &name) {
  int64_t qCount = c.queryCount(), kvCount = c.keyCount();
  AttentionInputs inputs = attentionInputs(c);
  Halves q = narrowed(inputs.q), k = narrowed(inputs.k);
  Halves v = narrowed(inputs.v), dOut = narrowed(inputs.dOut);
  int64_t rows = c.batch * c.heads * c.seq;
  DeviceBuffer<bf16> qGpu(q), kGpu(k), vGpu(v), dOutGpu(dOut);
  DeviceBuffer<float> outGpu(qCount), lseGpu(rows);
  // The backward reads the CPU forward's bf16 result and lse.
  DeviceBuffer<bf16> outOfCpu(qCount);
  DeviceBuffer<float> lseOfCpu(rows);
  DeviceBuffer<float> dqGpu(qCount), dkGpu(kvCount), dvGpu(kvCount);
  auto forward = [&] {
    gpu::attention(qGpu.get(), kGpu.get(), vGpu.get(), nullptr, c.batch, c.seq,
                   c.heads, c.kvHeads, c.headDim, mask, outGpu.get(),
                   lseGpu.get());
  };
  auto backward = [&] {
    gpu::attentionGrad(qGpu.get(), kGpu.get(), vGpu.get(), outOfCpu.get(),
                       lseOfCpu.get(), dOutGpu.get(), c.batch, c.seq, c.heads,
                       c.kvHeads, c.headDim, mask, dqGpu.get(), dkGpu.get(),
                       dvGpu.get());
  };
  if (c.headDim > moert::cuda::kMaxBf16AttentionHeadDim) {
    std::string expected =
        "bf16 head_dim " + std::to_string(c.headDim) +
        " is over the CUDA tensor-core kernels' " +
        std::to_string(moert::cuda::kMaxBf16AttentionHeadDim);
    EXPECT_NE(errorOf(forward).find(expected), std::string::npos) << name;
    EXPECT_NE(errorOf(backward).find(expected), std::string::npos) << name;
    return;
  }
  forward();
  Floats out = output(qCount), lse = output(rows);
  cpu::attention(q.data(), k.data(), v.data(), nullptr, c.batch, c.seq, c.heads,
                 c.kvHeads, c.headDim, mask, out.data(), lse.data());
  expectClose(outGpu.download(), out, "attention " + name, kAttentionTolerance);
  expectClose(lseGpu.download(), lse, "attention lse " + name, kLseTolerance);
  // A bf16 result (moe-narrow-results) is the kernel's f32 one rounded,
  // with the same lse.
  DeviceBuffer<bf16> out16Gpu(qCount);
  DeviceBuffer<float> lse16Gpu(rows);
  gpu::attention(qGpu.get(), kGpu.get(), vGpu.get(), nullptr, c.batch, c.seq,
                 c.heads, c.kvHeads, c.headDim, mask, out16Gpu.get(),
                 lse16Gpu.get());
  Floats outOfGpu = outGpu.download();
  std::vector<bf16> out16 = out16Gpu.download();
  for (int64_t i = 0; i < qCount; ++i)
    ASSERT_EQ(out16[i].bits, moert::toBf16(outOfGpu[i]).bits)
        << "attention, bf16 result " << name << " at " << i;
  EXPECT_EQ(lse16Gpu.download(), lseGpu.download())
      << "attention, bf16 result's lse " << name;

  Halves out16OfCpu = narrowed(out);
  outOfCpu.upload(out16OfCpu);
  lseOfCpu.upload(lse);
  backward();
  Floats dq = output(qCount), dk = output(kvCount), dv = output(kvCount);
  cpu::attentionGrad(q.data(), k.data(), v.data(), out16OfCpu.data(),
                     lse.data(), dOut.data(), c.batch, c.seq, c.heads,
                     c.kvHeads, c.headDim, mask, dq.data(), dk.data(),
                     dv.data());
  expectClose(dqGpu.download(), dq, "attentionGrad dq " + name,
              kAttentionTolerance);
  expectClose(dkGpu.download(), dk, "attentionGrad dk " + name,
              kAttentionTolerance);
  // Both round the same normalized probabilities for dV.
  expectBf16Close(dvGpu.download(), dv, "attentionGrad dv " + name, kNearlyAll);
}

} // namespace

TEST_F(CudaBf16KernelsTest, AttentionAndGradMatchCpu) {
  for (const char *kernel : attentionKernels()) {
    KernelChoice choice("MOE_CUDA_ATTENTION", kernel);
    for (const AttentionCase &c : kAttentionCases)
      for (moert::AttentionMask mask : attentionMasks(c))
        checkAttention(c, mask, c.name(mask) + " on " + kernel);
  }
}

TEST_F(CudaBf16KernelsTest, AttentionSinksMatchCpu) {
  // The tensor-core kernels' online softmax starts from each head's sink;
  // the sinks' gradient reads a bf16 result.
  const AttentionCase cases[] = {{2, 37, 4, 2, 32}, {1, 130, 4, 1, 64}};
  Floats sinks = {1.0f, -0.5f, 0.25f, 2.0f};
  DeviceBuffer<float> sinksGpu(sinks), dSinksGpu(4);
  for (const char *kernel : attentionKernels()) {
    KernelChoice choice("MOE_CUDA_ATTENTION", kernel);
    for (const AttentionCase &c : cases)
      for (moert::AttentionMask mask :
           {moert::AttentionMask{true}, moert::AttentionMask{true, 9}}) {
        std::string name = c.name(mask) + " sinks on " + kernel;
        int64_t qCount = c.queryCount(), rows = c.batch * c.heads * c.seq;
        AttentionInputs inputs = attentionInputs(c);
        Halves q = narrowed(inputs.q), k = narrowed(inputs.k);
        Halves v = narrowed(inputs.v), dOut = narrowed(inputs.dOut);
        DeviceBuffer<bf16> qGpu(q), kGpu(k), vGpu(v), dOutGpu(dOut);
        DeviceBuffer<float> outGpu(qCount), lseGpu(rows);
        gpu::attention(qGpu.get(), kGpu.get(), vGpu.get(), sinksGpu.get(),
                       c.batch, c.seq, c.heads, c.kvHeads, c.headDim, mask,
                       outGpu.get(), lseGpu.get());
        Floats out = output(qCount), lse = output(rows);
        cpu::attention(q.data(), k.data(), v.data(), sinks.data(), c.batch,
                       c.seq, c.heads, c.kvHeads, c.headDim, mask, out.data(),
                       lse.data());
        expectClose(outGpu.download(), out, "attention " + name,
                    kAttentionTolerance);
        expectClose(lseGpu.download(), lse, "attention lse " + name,
                    kLseTolerance);

        Halves out16 = narrowed(out);
        DeviceBuffer<bf16> out16Gpu(out16);
        DeviceBuffer<float> lseOfCpu(lse);
        gpu::attentionSinksGrad(sinksGpu.get(), lseOfCpu.get(), out16Gpu.get(),
                                dOutGpu.get(), c.batch, c.seq, c.heads,
                                c.headDim, dSinksGpu.get());
        Floats dSinks = output(4);
        cpu::attentionSinksGrad(sinks.data(), lse.data(), out16.data(),
                                dOut.data(), c.batch, c.seq, c.heads, c.headDim,
                                dSinks.data());
        expectClose(dSinksGpu.download(), dSinks, "attentionSinksGrad " + name,
                    kLseTolerance);
      }
  }
}

// A MOE_CUDA_ATTENTION the kernels do not know is an error naming it (no
// GPU needed: the choice comes before any launch).
TEST(AttentionKernelChoiceTest, ABadValueIsNamed) {
  KernelChoice choice("MOE_CUDA_ATTENTION", "flash");
  std::string error = errorOf([] {
    moert::cuda::attention<bf16, float>(
        nullptr, nullptr, nullptr, nullptr, 1, 64, 1, 1, 64,
        moert::AttentionMask{true}, nullptr, nullptr);
  });
  EXPECT_NE(error.find("MOE_CUDA_ATTENTION=flash: expected auto, mma.sync or "
                       "wgmma"),
            std::string::npos)
      << error;
}

namespace {

/// The expert FFN and its gradient against the CPU's, their grouped GEMMs
/// on `groupedGemm` (MOE_CUDA_GROUPED_GEMM). x's and dy's rows past the
/// counts are NaN, or zero for cuBLAS, which computes whole capacities and
/// needs them finite (as dispatch and combine's gradient leave them).
void checkExpertFfn(const Shape &s, const char *groupedGemm) {
  KernelChoice choice("MOE_CUDA_GROUPED_GEMM", groupedGemm);
  bool wholeCapacities = std::string(groupedGemm) == "cublas";
  std::string name = s.name() + " on " + groupedGemm;
  int64_t capacity = expertCapacity(s);
  Longs counts = mixedFills(s.experts, capacity);
  int64_t rows = s.experts * capacity * s.hidden;
  Halves x = narrowed(randomFloats(rows, 1)),
         dy = narrowed(randomFloats(rows, 2));
  for (int64_t e = 0; e < s.experts; ++e)
    for (int64_t i = (e * capacity + counts[e]) * s.hidden;
         i < (e + 1) * capacity * s.hidden; ++i)
      x[i] = dy[i] = moert::toBf16(wholeCapacities ? 0.0f : NAN);
  float scale = 1.0f / std::sqrt(static_cast<float>(s.hidden));
  int64_t weights = s.experts * s.ffn * s.hidden;
  Halves gateProj = narrowed(randomFloats(weights, 3, scale));
  Halves upProj = narrowed(randomFloats(weights, 4, scale));
  Halves downProj = narrowed(randomFloats(weights, 5, scale));
  int64_t projectionSize = s.experts * 2 * capacity * s.ffn;

  Floats y = output(rows);
  Halves projections(projectionSize, moert::toBf16(NAN));
  cpu::expertFfn(x.data(), gateProj.data(), upProj.data(), downProj.data(),
                 counts.data(), s.experts, capacity, s.hidden, s.ffn, y.data(),
                 projections.data());
  DeviceBuffer<bf16> xGpu(x), dyGpu(dy), gateGpu(gateProj), upGpu(upProj),
      downGpu(downProj);
  DeviceBuffer<int64_t> countsGpu(counts);
  DeviceBuffer<float> yGpu(rows);
  DeviceBuffer<bf16> projectionsGpu(projectionSize);
  gpu::expertFfn(xGpu.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                 countsGpu.get(), s.experts, capacity, s.hidden, s.ffn,
                 yGpu.get(), projectionsGpu.get());
  Floats yFromGpu = yGpu.download();
  expectBf16Close(filledRows<float>(yFromGpu, counts, capacity, s.hidden),
                  filledRows<float>(y, counts, capacity, s.hidden),
                  "expertFfn " + name, kNearlyAll);
  // The counted kernels neither compute nor write rows past the counts.
  for (int64_t e = 0; e < s.experts && !wholeCapacities; ++e)
    for (int64_t i = (e * capacity + counts[e]) * s.hidden;
         i < (e + 1) * capacity * s.hidden; ++i)
      ASSERT_TRUE(std::isnan(yFromGpu[i]))
          << "expertFfn " << name << " wrote " << yFromGpu[i] << " at " << i;
  // Each expert's gate then up projections, [experts, 2, capacity, ffn].
  Longs projectionCounts;
  for (int64_t count : counts)
    projectionCounts.insert(projectionCounts.end(), {count, count});
  expectBf16RoundedAlike(filledRows<float>(widened(projectionsGpu.download()),
                                           projectionCounts, capacity, s.ffn),
                         filledRows<float>(widened(projections),
                                           projectionCounts, capacity, s.ffn),
                         s.hidden, "expertFfn projections " + name);

  // The gradient from the CPU's projections, so that it is compared alone.
  Floats dx = output(rows), dGate = output(weights), dUp = output(weights),
         dDown = output(weights);
  cpu::expertFfnGrad(x.data(), gateProj.data(), upProj.data(), downProj.data(),
                     projections.data(), dy.data(), counts.data(), s.experts,
                     capacity, s.hidden, s.ffn, dx.data(), dGate.data(),
                     dUp.data(), dDown.data());
  DeviceBuffer<bf16> cpuProjectionsGpu(projections);
  DeviceBuffer<float> dxGpu(rows), dGateGpu(weights), dUpGpu(weights),
      dDownGpu(weights);
  // A first call on NaN rows, all of them counted, leaves NaN in the
  // scratch (da, dg, du, a) that the next reuses: past the counts, cuBLAS's
  // weight gradients then sum only what that call zeroes there.
  DeviceBuffer<bf16> nanRows(rows);
  DeviceBuffer<int64_t> fullCounts(Longs(s.experts, capacity));
  gpu::expertFfnGrad(nanRows.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                     cpuProjectionsGpu.get(), nanRows.get(), fullCounts.get(),
                     s.experts, capacity, s.hidden, s.ffn, dxGpu.get(),
                     dGateGpu.get(), dUpGpu.get(), dDownGpu.get());
  gpu::expertFfnGrad(xGpu.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                     cpuProjectionsGpu.get(), dyGpu.get(), countsGpu.get(),
                     s.experts, capacity, s.hidden, s.ffn, dxGpu.get(),
                     dGateGpu.get(), dUpGpu.get(), dDownGpu.get());
  expectBf16Close(
      filledRows<float>(dxGpu.download(), counts, capacity, s.hidden),
      filledRows<float>(dx, counts, capacity, s.hidden),
      "expertFfnGrad dx " + name, kNearlyAll);
  // Complete, and finite: no NaN row was read (an empty expert's are 0).
  expectBf16Close(dGateGpu.download(), dGate, "expertFfnGrad dGate " + name,
                  kNearlyAll);
  expectBf16Close(dUpGpu.download(), dUp, "expertFfnGrad dUp " + name,
                  kNearlyAll);
  expectBf16Close(dDownGpu.download(), dDown, "expertFfnGrad dDown " + name,
                  kNearlyAll);
}

} // namespace

TEST_F(CudaBf16KernelsTest, ExpertFfnAndGradMatchCpuOnFilledRows) {
  // And no tokens: capacity 0, whose weight gradients are 0.
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({0, 5, 3, 1, 7});
  std::vector<const char *> kernels = otherGroupedGemmKernels();
  kernels.insert(kernels.begin(), "auto");
  for (const char *kernel : kernels)
    for (const Shape &s : shapes)
      checkExpertFfn(s, kernel);
}
