//===- CudaKernelsTest.cpp - CUDA transformer and optimizer kernels -------===//
//
// Every transformer and optimizer kernel of moert::cuda against its CPU
// kernel (moert::cpu, the reference of the CUDA target) on the same random
// inputs (the linear layers' with f32 and with bf16 operands), including
// sizes that are not multiples of the warp, and lists of more than one
// launch's worth of tensors; bad token ids and targets raise the CPU kernels'
// messages on the next synchronization; and the deterministic kernels give
// bitwise identical results twice. The attention, routing and expert kernels:
// CudaAttentionKernelsTest.cpp, CudaRoutingKernelsTest.cpp,
// CudaExpertKernelsTest.cpp.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"
#include "moert/CpuKernels.h"

#include "Bf16TestUtils.h"
#include "CudaTestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

using namespace moe::cudatest;
using moe::test::expectBf16RoundedAlike;
using moe::test::Halves;
using moe::test::narrowed;
using moe::test::operandsOf;
using moe::test::widened;

namespace {

class CudaTransformerKernelsTest : public CudaTest {};
class CudaOptimizerKernelsTest : public CudaTest {};

} // namespace

//===----------------------------------------------------------------------===//
// Embedding.
//===----------------------------------------------------------------------===//

TEST_F(CudaTransformerKernelsTest, EmbeddingAndGradMatchCpu) {
  struct Case {
    int64_t vocab, hidden, count;
  };
  // Vocabularies larger and smaller than the count: rows nobody gathered
  // get zero gradient, repeated ids (about 100 each in the last) add up.
  for (Case c : {Case{1, 1, 1}, Case{7, 5, 13}, Case{256, 128, 768},
                 Case{33, 130, 50}, Case{1000, 3, 20}, Case{50, 300, 5000}}) {
    std::string name = shapeName({c.vocab, c.hidden, c.count});
    Floats table = randomFloats(c.vocab * c.hidden, 1);
    Ids ids = randomIds(c.count, static_cast<int32_t>(c.vocab), 2);
    Floats dOut = randomFloats(c.count * c.hidden, 3);
    DeviceBuffer<float> tableGpu(table), dOutGpu(dOut);
    DeviceBuffer<int32_t> idsGpu(ids);

    DeviceBuffer<float> yGpu(c.count * c.hidden);
    gpu::embedding(tableGpu.get(), c.vocab, c.hidden, idsGpu.get(), c.count,
                   yGpu.get());
    Floats y = output(c.count * c.hidden);
    cpu::embedding(table.data(), c.vocab, c.hidden, ids.data(), c.count,
                   y.data());
    expectClose(yGpu.download(), y, "embedding " + name, 0.0);

    // Without a padding id, and with the first id's row as padding.
    for (int64_t padding : {int64_t(-1), int64_t(ids[0])}) {
      DeviceBuffer<float> dTableGpu(c.vocab * c.hidden);
      gpu::embeddingGrad(idsGpu.get(), c.count, dOutGpu.get(), c.vocab,
                         c.hidden, padding, dTableGpu.get());
      Floats dTable = output(c.vocab * c.hidden);
      cpu::embeddingGrad(ids.data(), c.count, dOut.data(), c.vocab, c.hidden,
                         padding, dTable.data());
      expectClose(dTableGpu.download(), dTable,
                  "embeddingGrad " + name + " padding " +
                      std::to_string(padding));
    }
  }
}

TEST_F(CudaTransformerKernelsTest, BadIdsAndTargetsRaiseTheCpuMessages) {
  const int64_t vocab = 256, hidden = 4, rows = 3;
  Floats table = randomFloats(vocab * hidden, 1);
  Floats dOut = randomFloats(rows * hidden, 2);
  Floats logits = randomFloats(rows * vocab, 3);
  DeviceBuffer<float> tableGpu(table), dOutGpu(dOut), logitsGpu(logits);
  DeviceBuffer<float> yGpu(rows * hidden), dTableGpu(vocab * hidden);
  DeviceBuffer<float> lossGpu(1), dLogitsGpu(rows * vocab);
  DeviceBuffer<float> dLossGpu = scalar(1.0f);
  for (int32_t bad : {300, 256, -1}) {
    std::string name = "id " + std::to_string(bad);
    Ids ids = {5, bad, 7};
    DeviceBuffer<int32_t> idsGpu(ids);
    Floats y(rows * hidden), dTable(vocab * hidden), dLogits(rows * vocab);

    std::string expected = errorOf([&] {
      cpu::embedding(table.data(), vocab, hidden, ids.data(), rows, y.data());
    });
    EXPECT_EQ(expected, "moe.embedding: token id " + std::to_string(bad) +
                            " is outside [0, 256)");
    expectDeviceError(
        [&] {
          gpu::embedding(tableGpu.get(), vocab, hidden, idsGpu.get(), rows,
                         yGpu.get());
        },
        expected, "embedding " + name);
    expectDeviceError(
        [&] {
          gpu::embeddingGrad(idsGpu.get(), rows, dOutGpu.get(), vocab, hidden,
                             /*paddingId=*/-1, dTableGpu.get());
        },
        errorOf([&] {
          cpu::embeddingGrad(ids.data(), rows, dOut.data(), vocab, hidden,
                             /*paddingId=*/-1, dTable.data());
        }),
        "embeddingGrad " + name);

    // Cross-entropy targets, ignoring -100 (a bad target is not ignored).
    cpu::CountedTargets counted{true, -100};
    expected = errorOf([&] {
      cpu::crossEntropy(logits.data(), ids.data(), rows, vocab, counted, 3);
    });
    EXPECT_EQ(expected, "moe.cross_entropy: target " + std::to_string(bad) +
                            " is outside [0, 256)");
    expectDeviceError(
        [&] {
          gpu::crossEntropy(logitsGpu.get(), idsGpu.get(), rows, vocab, counted,
                            gpu::Divisor(3.0), lossGpu.get());
        },
        expected, "crossEntropy " + name);
    expectDeviceError(
        [&] {
          gpu::crossEntropyGrad(logitsGpu.get(), idsGpu.get(), rows, vocab,
                                counted, gpu::Divisor(3.0), dLossGpu.get(),
                                dLogitsGpu.get());
        },
        errorOf([&] {
          cpu::crossEntropyGrad(logits.data(), ids.data(), rows, vocab, counted,
                                3, 1.0f, dLogits.data());
        }),
        "crossEntropyGrad " + name);
  }
  // An ignored target is not looked at.
  Ids ignored = {5, -100, 7};
  DeviceBuffer<int32_t> ignoredGpu(ignored);
  gpu::crossEntropy(logitsGpu.get(), ignoredGpu.get(), rows, vocab,
                    {true, -100}, gpu::Divisor(2.0), lossGpu.get());
  EXPECT_NO_THROW(synchronize());
}

//===----------------------------------------------------------------------===//
// RMS norm and linear layers.
//===----------------------------------------------------------------------===//

TEST_F(CudaTransformerKernelsTest, RmsNormAndGradMatchCpu) {
  struct Case {
    int64_t rows, hidden;
    double eps;
  };
  // Rows over several 128-row chunks of the column sums, hidden sizes off
  // the block of 256 threads.
  for (Case c :
       {Case{1, 1, 1e-5}, Case{3, 5, 1e-6}, Case{768, 128, 1e-5},
        Case{17, 130, 1e-5}, Case{300, 1001, 1e-6}, Case{2000, 257, 1e-5}}) {
    std::string name = shapeName({c.rows, c.hidden});
    Floats x = randomFloats(c.rows * c.hidden, 1, 2.0f);
    Floats weight = randomFloats(c.hidden, 2);
    Floats dy = randomFloats(c.rows * c.hidden, 3);
    DeviceBuffer<float> xGpu(x), weightGpu(weight), dyGpu(dy);

    DeviceBuffer<float> yGpu(c.rows * c.hidden);
    gpu::rmsNorm(xGpu.get(), weightGpu.get(), c.rows, c.hidden, c.eps,
                 yGpu.get());
    Floats y = output(c.rows * c.hidden);
    cpu::rmsNorm(x.data(), weight.data(), c.rows, c.hidden, c.eps, y.data());
    expectClose(yGpu.download(), y, "rmsNorm " + name);
    // A narrowed result is the GPU's f32 one rounded, bit for bit.
    DeviceBuffer<moert::bf16> narrowedYGpu(c.rows * c.hidden),
        expectedYGpu(c.rows * c.hidden);
    gpu::rmsNorm(xGpu.get(), weightGpu.get(), c.rows, c.hidden, c.eps,
                 narrowedYGpu.get());
    gpu::convert(yGpu.get(), c.rows * c.hidden, expectedYGpu.get());
    expectBitwiseEqual(narrowedYGpu.download(), expectedYGpu.download(),
                       "rmsNorm into bf16 " + name);

    DeviceBuffer<float> dxGpu(c.rows * c.hidden), dWeightGpu(c.hidden);
    gpu::rmsNormGrad(xGpu.get(), weightGpu.get(), dyGpu.get(), c.rows, c.hidden,
                     c.eps, dxGpu.get(), dWeightGpu.get());
    Floats dx = output(c.rows * c.hidden), dWeight = output(c.hidden);
    cpu::rmsNormGrad(x.data(), weight.data(), dy.data(), c.rows, c.hidden,
                     c.eps, dx.data(), dWeight.data());
    expectClose(dxGpu.download(), dx, "rmsNormGrad dx " + name);
    expectClose(dWeightGpu.download(), dWeight, "rmsNormGrad dWeight " + name);

    // A bf16 input (the stored activation) gives the f32 input's results
    // for the widened values, bit for bit.
    Halves stored = narrowed(x);
    DeviceBuffer<moert::bf16> storedGpu(stored);
    DeviceBuffer<float> widenedGpu(widened(stored));
    DeviceBuffer<float> dxOfStored(c.rows * c.hidden),
        dWeightOfStored(c.hidden);
    gpu::rmsNormGrad(storedGpu.get(), weightGpu.get(), dyGpu.get(), c.rows,
                     c.hidden, c.eps, dxOfStored.get(), dWeightOfStored.get());
    gpu::rmsNormGrad(widenedGpu.get(), weightGpu.get(), dyGpu.get(), c.rows,
                     c.hidden, c.eps, dxGpu.get(), dWeightGpu.get());
    expectBitwiseEqual(dxOfStored.download(), dxGpu.download(),
                       "rmsNormGrad dx of bf16 " + name);
    expectBitwiseEqual(dWeightOfStored.download(), dWeightGpu.download(),
                       "rmsNormGrad dWeight of bf16 " + name);
  }
}

namespace {

/// linear (with and without bias) and its input and weight gradients on
/// both targets, with operands of type T (random values rounded to T, bf16
/// being mixed precision) and f32 results, within the GEMM tolerance; over
/// bf16 operands also bf16 results of linear and its input gradient.
template <typename T>
void expectLinearMatchesCpu(int64_t rows, int64_t in, int64_t out) {
  std::string name = shapeName({rows, in, out}) +
                     (std::is_same_v<T, float> ? "" : " bf16 operands");
  std::vector<T> x = operandsOf<T>(randomFloats(rows * in, 1));
  std::vector<T> weight = operandsOf<T>(randomFloats(out * in, 2));
  Floats bias = randomFloats(out, 3);
  std::vector<T> dy = operandsOf<T>(randomFloats(rows * out, 4));
  DeviceBuffer<T> xGpu(x), weightGpu(weight), dyGpu(dy);
  DeviceBuffer<float> biasGpu(bias);

  for (bool withBias : {false, true}) {
    DeviceBuffer<float> yGpu(rows * out);
    gpu::linear(xGpu.get(), weightGpu.get(), withBias ? biasGpu.get() : nullptr,
                rows, in, out, yGpu.get());
    Floats y = output(rows * out);
    cpu::linear(x.data(), weight.data(), withBias ? bias.data() : nullptr, rows,
                in, out, y.data());
    expectClose(yGpu.download(), y,
                (withBias ? "linear+bias " : "linear ") + name, kGemmTolerance);
  }

  DeviceBuffer<float> dxGpu(rows * in);
  gpu::linearInputGrad(dyGpu.get(), weightGpu.get(), rows, in, out,
                       dxGpu.get());
  Floats dx = output(rows * in);
  cpu::linearInputGrad(dy.data(), weight.data(), rows, in, out, dx.data());
  expectClose(dxGpu.download(), dx, "linearInputGrad " + name, kGemmTolerance);

  DeviceBuffer<float> dWeightGpu(out * in);
  gpu::linearWeightGrad(dyGpu.get(), xGpu.get(), rows, in, out,
                        dWeightGpu.get());
  Floats dWeight = output(out * in);
  cpu::linearWeightGrad(dy.data(), x.data(), rows, in, out, dWeight.data());
  expectClose(dWeightGpu.download(), dWeight, "linearWeightGrad " + name,
              kGemmTolerance);

  // Over bf16 operands, bf16 results: cuBLAS rounds its f32 sums as it
  // stores them, the CPU rounds its own, summed in another order.
  if constexpr (std::is_same_v<T, moert::bf16>) {
    DeviceBuffer<moert::bf16> y16Gpu(rows * out), dx16Gpu(rows * in);
    gpu::linear(xGpu.get(), weightGpu.get(), nullptr, rows, in, out,
                y16Gpu.get());
    std::vector<moert::bf16> y16(rows * out), dx16(rows * in);
    cpu::linear(x.data(), weight.data(), nullptr, rows, in, out, y16.data());
    expectBf16RoundedAlike(widened(y16Gpu.download()), widened(y16), in,
                           "linear, bf16 result " + name);
    gpu::linearInputGrad(dyGpu.get(), weightGpu.get(), rows, in, out,
                         dx16Gpu.get());
    cpu::linearInputGrad(dy.data(), weight.data(), rows, in, out, dx16.data());
    expectBf16RoundedAlike(widened(dx16Gpu.download()), widened(dx16), out,
                           "linearInputGrad, bf16 result " + name);
  }
}

struct LinearCase {
  int64_t rows, in, out;
};
// No rows: empty outputs, zero weight and bias gradients; no inputs: the
// bias alone (or zeros), an empty weight gradient.
const LinearCase kLinearCases[] = {
    {1, 1, 1},      {7, 5, 3}, {768, 128, 128}, {768, 128, 256},
    {33, 130, 257}, {0, 5, 3}, {2000, 64, 48},  {4, 0, 3}};

} // namespace

TEST_F(CudaTransformerKernelsTest, LinearAndGradsMatchCpu) {
  for (LinearCase c : kLinearCases) {
    expectLinearMatchesCpu<float>(c.rows, c.in, c.out);
    Floats dy = randomFloats(c.rows * c.out, 4);
    DeviceBuffer<float> dyGpu(dy), dBiasGpu(c.out);
    gpu::biasGrad(dyGpu.get(), c.rows, c.out, dBiasGpu.get());
    Floats dBias = output(c.out);
    cpu::biasGrad(dy.data(), c.rows, c.out, dBias.data());
    expectClose(dBiasGpu.download(), dBias,
                "biasGrad " + shapeName({c.rows, c.in, c.out}));
  }
}

TEST_F(CudaTransformerKernelsTest, LinearAndGradsOnBf16OperandsMatchCpu) {
  // f32 accumulation of exact products on both targets (tensor cores on
  // the GPU): the f32 GEMMs' tolerance.
  for (LinearCase c : kLinearCases)
    expectLinearMatchesCpu<moert::bf16>(c.rows, c.in, c.out);
}

//===----------------------------------------------------------------------===//
// RoPE and attention.
//===----------------------------------------------------------------------===//

TEST_F(CudaTransformerKernelsTest, RopeMatchesCpuAndInverts) {
  for (const RopeCase &c : kRopeCases) {
    std::string name = c.name();
    int64_t count = c.batch * c.seq * c.heads * c.headDim;
    Floats x = randomFloats(count, 1);
    DeviceBuffer<float> xGpu(x);
    for (bool inverse : {false, true}) {
      DeviceBuffer<float> yGpu(count);
      gpu::rope(xGpu.get(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
                c.theta, c.scaling, inverse, c.interleaved, yGpu.get());
      Floats y = output(count);
      cpu::rope(x.data(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
                c.theta, c.scaling, inverse, c.interleaved, y.data());
      expectClose(yGpu.download(), y,
                  "rope " + name + (inverse ? " inverse" : ""));
      // A narrowed result is the GPU's f32 one rounded, bit for bit.
      DeviceBuffer<moert::bf16> narrowed(count), expected(count);
      gpu::rope(xGpu.get(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
                c.theta, c.scaling, inverse, c.interleaved, narrowed.get());
      gpu::convert(yGpu.get(), count, expected.get());
      expectBitwiseEqual(narrowed.download(), expected.download(),
                         "rope into bf16 " + name +
                             (inverse ? " inverse" : ""));
    }
    // The inverse undoes the rotation (unscaled: the attention factor would
    // apply twice).
    DeviceBuffer<float> rotated(count), back(count);
    gpu::rope(xGpu.get(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
              c.theta, {}, false, c.interleaved, rotated.get());
    gpu::rope(rotated.get(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
              c.theta, {}, true, c.interleaved, back.get());
    expectClose(back.download(), x, "rope round trip " + name);
  }
}

//===----------------------------------------------------------------------===//
// Elementwise ops.
//===----------------------------------------------------------------------===//

TEST_F(CudaTransformerKernelsTest, SigmoidScaleMatchesCpu) {
  // Odd widths, and past the grid-stride loops' 65536 blocks; rows of one
  // (a gate an element) run a thread each.
  for (auto [rows, hidden] : {std::pair<int64_t, int64_t>{1, 1},
                              {3, 7},
                              {70, 1025},
                              {(1 << 19) + 3, 33},
                              {(1 << 24) + 5, 1}}) {
    std::string name = std::to_string(rows) + "x" + std::to_string(hidden);
    int64_t count = rows * hidden;
    Floats x = randomFloats(count, 1), logit = randomFloats(rows, 2, 4.0f),
           dy = randomFloats(count, 3);
    logit[0] = 100.0f;
    if (rows > 1)
      logit[1] = -100.0f;
    DeviceBuffer<float> xGpu(x), logitGpu(logit), dyGpu(dy);

    DeviceBuffer<float> yGpu(count);
    gpu::sigmoidScale(xGpu.get(), logitGpu.get(), rows, hidden, yGpu.get());
    Floats y = output(count);
    cpu::sigmoidScale(x.data(), logit.data(), rows, hidden, y.data());
    expectClose(yGpu.download(), y, "sigmoidScale " + name);

    DeviceBuffer<float> dxGpu(count), dLogitGpu(rows);
    gpu::sigmoidScaleGrad(xGpu.get(), logitGpu.get(), dyGpu.get(), rows, hidden,
                          dxGpu.get(), dLogitGpu.get());
    Floats dx = output(count), dLogit = output(rows);
    cpu::sigmoidScaleGrad(x.data(), logit.data(), dy.data(), rows, hidden,
                          dx.data(), dLogit.data());
    expectClose(dxGpu.download(), dx, "sigmoidScaleGrad dx " + name);
    expectClose(dLogitGpu.download(), dLogit,
                "sigmoidScaleGrad dLogit " + name);
  }
}

TEST_F(CudaTransformerKernelsTest, ElementwiseOpsMatchCpu) {
  // Odd tails, and past the grid-stride loop's 65536 blocks of 256.
  for (int64_t count : {1, 7, 1000, 1025, 70001, (1 << 24) + 3}) {
    std::string name = std::to_string(count);
    Floats gate = randomFloats(count, 1, 4.0f), up = randomFloats(count, 2);
    Floats dy = randomFloats(count, 3);
    // Saturated gates, past the exp's range on both sides.
    gate[0] = 100.0f;
    if (count > 1)
      gate[1] = -100.0f;
    DeviceBuffer<float> gateGpu(gate), upGpu(up), dyGpu(dy);

    DeviceBuffer<float> yGpu(count);
    gpu::swiglu(gateGpu.get(), upGpu.get(), count, yGpu.get());
    Floats y = output(count);
    cpu::swiglu(gate.data(), up.data(), count, y.data());
    expectClose(yGpu.download(), y, "swiglu " + name);

    DeviceBuffer<float> dGateGpu(count), dUpGpu(count);
    gpu::swigluGrad(gateGpu.get(), upGpu.get(), dyGpu.get(), count,
                    dGateGpu.get(), dUpGpu.get());
    Floats dGate = output(count), dUp = output(count);
    cpu::swigluGrad(gate.data(), up.data(), dy.data(), count, dGate.data(),
                    dUp.data());
    expectClose(dGateGpu.download(), dGate, "swigluGrad dGate " + name);
    expectClose(dUpGpu.download(), dUp, "swigluGrad dUp " + name);

    // One rounding each: exact.
    gpu::add(gateGpu.get(), upGpu.get(), count, yGpu.get());
    cpu::add(gate.data(), up.data(), count, y.data());
    expectClose(yGpu.download(), y, "add " + name, 0.0);
    gpu::mul(gateGpu.get(), upGpu.get(), count, yGpu.get());
    cpu::mul(gate.data(), up.data(), count, y.data());
    expectClose(yGpu.download(), y, "mul " + name, 0.0);
    gpu::scale(gateGpu.get(), 0.22, count, yGpu.get());
    cpu::scale(gate.data(), 0.22, count, y.data());
    expectClose(yGpu.download(), y, "scale " + name, 0.0);
  }
}

//===----------------------------------------------------------------------===//
// Cross-entropy.
//===----------------------------------------------------------------------===//

TEST_F(CudaTransformerKernelsTest, CrossEntropyAndGradMatchCpu) {
  struct Case {
    int64_t rows, vocab;
    float stddev, dLoss;
  };
  // Large logits check the max shift; a vocab of one gives a zero loss; a
  // vocabulary past the block of 256 threads.
  for (Case c :
       {Case{1, 1, 1, 1}, Case{5, 7, 1, 1}, Case{768, 256, 2, 1},
        Case{50, 1001, 30, 0.37f}, Case{3, 9, 100, -2}, Case{2000, 50, 1, 1}}) {
    std::string name = shapeName({c.rows, c.vocab});
    Floats logits = randomFloats(c.rows * c.vocab, 1, c.stddev);
    Ids targets = randomIds(c.rows, static_cast<int32_t>(c.vocab), 2);
    // Transformers' -100 on every third row; every row ignored (divisor 0
    // gives 0); and an ignore index that is a valid target.
    Ids masked = targets, allIgnored(c.rows, -100);
    for (int64_t r = 0; r < c.rows; r += 3)
      masked[r] = -100;
    struct Variant {
      const Ids &targets;
      cpu::CountedTargets counted;
      std::string what;
    };
    DeviceBuffer<float> logitsGpu(logits);
    DeviceBuffer<float> dLossGpu = scalar(c.dLoss);
    for (const Variant &v : {Variant{targets, {false, 0}, ""},
                             Variant{masked, {true, -100}, " ignoring -100"},
                             Variant{allIgnored, {true, -100}, " all ignored"},
                             Variant{targets, {true, 3}, " ignoring 3"}}) {
      std::string what = name + v.what;
      DeviceBuffer<int32_t> targetsGpu(v.targets);

      // The count on the device: the divisor that generated code passes.
      DeviceBuffer<float> countGpu(1);
      gpu::countTargets(targetsGpu.get(), c.rows, v.counted, countGpu.get());
      float count = cpu::countTargets(v.targets.data(), c.rows, v.counted);
      EXPECT_EQ(countGpu.value(), count) << "countTargets " << what;
      double divisor = v.counted.ignores ? count : static_cast<double>(c.rows);
      DeviceBuffer<float> divisorGpu = scalar(static_cast<float>(divisor));

      float loss = cpu::crossEntropy(logits.data(), v.targets.data(), c.rows,
                                     c.vocab, v.counted, divisor);
      DeviceBuffer<float> constantLoss(1), deviceLoss(1);
      gpu::crossEntropy(logitsGpu.get(), targetsGpu.get(), c.rows, c.vocab,
                        v.counted, gpu::Divisor(divisor), constantLoss.get());
      gpu::crossEntropy(logitsGpu.get(), targetsGpu.get(), c.rows, c.vocab,
                        v.counted, gpu::Divisor(divisorGpu.get()),
                        deviceLoss.get());
      expectScalarClose(constantLoss.value(), loss,
                        "crossEntropy constant divisor " + what, 1e-5, 1.0);
      EXPECT_EQ(deviceLoss.value(), constantLoss.value())
          << "crossEntropy device divisor " << what;

      Floats dLogits = output(c.rows * c.vocab);
      cpu::crossEntropyGrad(logits.data(), v.targets.data(), c.rows, c.vocab,
                            v.counted, divisor, c.dLoss, dLogits.data());
      DeviceBuffer<float> constantGrad(c.rows * c.vocab);
      gpu::crossEntropyGrad(logitsGpu.get(), targetsGpu.get(), c.rows, c.vocab,
                            v.counted, gpu::Divisor(divisor), dLossGpu.get(),
                            constantGrad.get());
      expectClose(constantGrad.download(), dLogits,
                  "crossEntropyGrad constant divisor " + what);
      // A narrowed gradient is the GPU's f32 one rounded, bit for bit.
      DeviceBuffer<moert::bf16> narrowedGrad(c.rows * c.vocab),
          expectedGrad(c.rows * c.vocab);
      gpu::crossEntropyGrad(logitsGpu.get(), targetsGpu.get(), c.rows, c.vocab,
                            v.counted, gpu::Divisor(divisor), dLossGpu.get(),
                            narrowedGrad.get());
      gpu::convert(constantGrad.get(), c.rows * c.vocab, expectedGrad.get());
      expectBitwiseEqual(narrowedGrad.download(), expectedGrad.download(),
                         "crossEntropyGrad into bf16 " + what);
      // The count is the divisor (all rows when none is ignored).
      DeviceBuffer<float> deviceGrad(c.rows * c.vocab);
      gpu::crossEntropyGrad(logitsGpu.get(), targetsGpu.get(), c.rows, c.vocab,
                            v.counted, gpu::Divisor(countGpu.get()),
                            dLossGpu.get(), deviceGrad.get());
      expectClose(deviceGrad.download(), dLogits,
                  "crossEntropyGrad device divisor " + what);

      if (&v.targets == &allIgnored) {
        // Divided by the device count, 0: the loss and its gradient are 0.
        DeviceBuffer<float> zero(1);
        gpu::crossEntropy(logitsGpu.get(), targetsGpu.get(), c.rows, c.vocab,
                          v.counted, gpu::Divisor(countGpu.get()), zero.get());
        EXPECT_EQ(zero.value(), 0.0f) << what;
        expectClose(deviceGrad.download(), Floats(c.rows * c.vocab, 0.0f),
                    "all ignored: zero gradient " + what, 0.0);
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Optimizer.
//===----------------------------------------------------------------------===//

TEST_F(CudaOptimizerKernelsTest, LrScheduleMatchesCpu) {
  struct Schedule {
    double maxLr, minLr;
    int64_t warmupSteps, decaySteps;
  };
  // With warmup, and without (flat); every decay.
  for (Schedule s : {Schedule{3e-4, 3e-5, 10, 100}, Schedule{1e-3, 1e-3, 0, 5}})
    for (moert::LrDecay decay : {moert::LrDecay::Cosine, moert::LrDecay::Linear,
                                 moert::LrDecay::Constant})
      for (int64_t step : {0, 1, 2, 5, 9, 10, 11, 50, 99, 100, 101, 1000}) {
        DeviceBuffer<int64_t> stepGpu = scalar(step);
        DeviceBuffer<float> lrGpu(1);
        gpu::lrSchedule(stepGpu.get(), s.maxLr, s.minLr, s.warmupSteps,
                        s.decaySteps, decay, lrGpu.get());
        expectScalarClose(lrGpu.value(),
                          cpu::lrSchedule(step, s.maxLr, s.minLr, s.warmupSteps,
                                          s.decaySteps, decay),
                          "lrSchedule step " + std::to_string(step), 1e-6);
      }
}

namespace {
/// globalNorm of `tensors` on both targets.
void expectGlobalNormMatches(const std::vector<Floats> &tensors,
                             const std::string &what) {
  std::vector<DeviceBuffer<float>> buffers;
  std::vector<const float *> hostPointers, devicePointers;
  std::vector<int64_t> sizes;
  buffers.reserve(tensors.size());
  for (const Floats &tensor : tensors) {
    buffers.emplace_back(tensor);
    hostPointers.push_back(tensor.data());
    devicePointers.push_back(buffers.back().get());
    sizes.push_back(static_cast<int64_t>(tensor.size()));
  }
  int64_t count = static_cast<int64_t>(tensors.size());
  DeviceBuffer<float> normGpu(1);
  gpu::globalNorm(devicePointers.data(), sizes.data(), count, normGpu.get());
  expectScalarClose(normGpu.value(),
                    cpu::globalNorm(hostPointers.data(), sizes.data(), count),
                    what);
}
} // namespace

TEST_F(CudaOptimizerKernelsTest, GlobalNormMatchesCpu) {
  // Sizes around and well past a block's and 128 blocks' elements, and an
  // empty tensor.
  std::vector<Floats> tensors;
  uint32_t seed = 0;
  for (int64_t size : {1, 0, 17, 1000, 100003, 262144, 3000001}) {
    ++seed;
    tensors.push_back(randomFloats(size, seed, 0.1f * seed));
  }
  expectGlobalNormMatches(tensors, "globalNorm");
  // More tensors than one launch's list of 64 (a model's parameters).
  std::vector<Floats> many;
  for (int64_t i = 0; i < 150; ++i)
    many.push_back(randomFloats(i % 7 == 3 ? 0 : (i * 997) % 5000 + 1,
                                static_cast<uint32_t>(100 + i),
                                0.5f + 0.01f * static_cast<float>(i)));
  expectGlobalNormMatches(many, "globalNorm of 150 tensors");
  // None: 0.
  DeviceBuffer<float> normGpu(1);
  gpu::globalNorm(nullptr, nullptr, 0, normGpu.get());
  EXPECT_EQ(normGpu.value(), 0.0f);
}

TEST_F(CudaOptimizerKernelsTest, AddInt64IsExactAndMayAlias) {
  for (int64_t count : {1, 37, 100003}) {
    std::string name = std::to_string(count);
    Longs a(count), b(count);
    for (int64_t i = 0; i < count; ++i) {
      a[i] = (int64_t(1) << 40) + i * 12345;
      b[i] = i % 3 == 0 ? -i : i + 1;
    }
    Longs y(count, -7);
    cpu::addInt64(a.data(), b.data(), count, y.data());
    DeviceBuffer<int64_t> aGpu(a), bGpu(b), yGpu(count);
    gpu::addInt64(aGpu.get(), bGpu.get(), count, yGpu.get());
    expectExact(yGpu.download(), y, "addInt64 " + name);
    // y aliasing a: the step counter's update.
    gpu::addInt64(aGpu.get(), bGpu.get(), count, aGpu.get());
    expectExact(aGpu.download(), y, "in-place addInt64 " + name);
  }
}

TEST_F(CudaOptimizerKernelsTest, AdamWMatchesCpuAndMayAlias) {
  for (AdamWCase &c : adamwCases()) {
    std::string name = c.name();
    auto [newParam, newAvg, newAvgSq] = c.cpuUpdate();

    DeviceBuffer<float> paramGpu(c.param), gradGpu(c.grad), avgGpu(c.expAvg),
        avgSqGpu(c.expAvgSq);
    DeviceBuffer<float> lrGpu = scalar(c.lr), normGpu = scalar(c.gradNorm);
    DeviceBuffer<int64_t> stepGpu = scalar(c.step);
    DeviceBuffer<float> newParamGpu(c.count), newAvgGpu(c.count),
        newAvgSqGpu(c.count);
    gpu::adamw(paramGpu.get(), gradGpu.get(), avgGpu.get(), avgSqGpu.get(),
               c.count, lrGpu.get(), normGpu.get(), stepGpu.get(), c.config(),
               newParamGpu.get(), newAvgGpu.get(), newAvgSqGpu.get());
    Floats outParam = newParamGpu.download(), outAvg = newAvgGpu.download(),
           outAvgSq = newAvgSqGpu.download();
    // The parameters within a few ulps: the update is ~1e-4 of them.
    expectClose(outParam, newParam, "adamw param " + name, 1e-6);
    expectClose(outAvg, newAvg, "adamw expAvg " + name);
    expectClose(outAvgSq, newAvgSq, "adamw expAvgSq " + name);

    // In place: the outputs alias the inputs.
    gpu::adamw(paramGpu.get(), gradGpu.get(), avgGpu.get(), avgSqGpu.get(),
               c.count, lrGpu.get(), normGpu.get(), stepGpu.get(), c.config(),
               paramGpu.get(), avgGpu.get(), avgSqGpu.get());
    expectBitwiseEqual(paramGpu.download(), outParam,
                       "in-place adamw param " + name);
    expectBitwiseEqual(avgGpu.download(), outAvg,
                       "in-place adamw expAvg " + name);
    expectBitwiseEqual(avgSqGpu.download(), outAvgSq,
                       "in-place adamw expAvgSq " + name);

    // Arrays that start off the 16-byte alignment: one element a thread
    // (above, four where the arrays allow), the same update bit for bit.
    if (c.count > 1) {
      DeviceBuffer<float> shiftedParam(c.param), shiftedGrad(c.grad),
          shiftedAvg(c.expAvg), shiftedAvgSq(c.expAvgSq);
      gpu::adamw(shiftedParam.get() + 1, shiftedGrad.get() + 1,
                 shiftedAvg.get() + 1, shiftedAvgSq.get() + 1, c.count - 1,
                 lrGpu.get(), normGpu.get(), stepGpu.get(), c.config(),
                 shiftedParam.get() + 1, shiftedAvg.get() + 1,
                 shiftedAvgSq.get() + 1);
      auto tail = [](const Floats &values) {
        return Floats(values.begin() + 1, values.end());
      };
      expectBitwiseEqual(tail(shiftedParam.download()), tail(outParam),
                         "unaligned adamw param " + name);
      expectBitwiseEqual(tail(shiftedAvg.download()), tail(outAvg),
                         "unaligned adamw expAvg " + name);
      expectBitwiseEqual(tail(shiftedAvgSq.download()), tail(outAvgSq),
                         "unaligned adamw expAvgSq " + name);
    }
  }
}

//===----------------------------------------------------------------------===//
// Determinism: two runs, same bits.
//===----------------------------------------------------------------------===//

TEST_F(CudaTransformerKernelsTest, DeterministicKernelsAreBitwiseReproducible) {
  // The benchmark's shapes (batch 12 x seq 64, hidden 128, 4 heads, vocab
  // 256); grouped-query attention over a sequence of three tiles; 5000
  // positions over a vocabulary of 50 (long runs of repeated ids); and a
  // model's worth of tensors for the norm.
  const int64_t batch = 12, seq = 64, heads = 4, headDim = 32, hidden = 128;
  const int64_t rows = batch * seq, vocab = 256;
  Floats x = randomFloats(rows * hidden, 1),
         dy = randomFloats(rows * hidden, 2);
  Floats weight = randomFloats(hidden, 3);
  Floats logits = randomFloats(rows * vocab, 4, 2.0f);
  Ids ids = randomIds(rows, static_cast<int32_t>(vocab), 5);
  Ids manyIds = randomIds(5000, 50, 6);
  Floats manyDOut = randomFloats(5000 * hidden, 7);
  Floats q = randomFloats(rows * hidden, 8, 1.5f);
  Floats k = randomFloats(rows * hidden, 9),
         v = randomFloats(rows * hidden, 10);
  const int64_t gqaSeq = 150, gqaHeads = 8, gqaKvHeads = 2, gqaDim = 64;
  Floats gqaQ = randomFloats(2 * gqaSeq * gqaHeads * gqaDim, 11, 1.5f);
  Floats gqaK = randomFloats(2 * gqaSeq * gqaKvHeads * gqaDim, 12);
  Floats gqaV = randomFloats(2 * gqaSeq * gqaKvHeads * gqaDim, 13);
  Floats gqaDOut = randomFloats(gqaQ.size(), 14);
  std::vector<Floats> norms;
  for (int64_t i = 0; i < 100; ++i)
    norms.push_back(
        randomFloats((i * 7919) % 30000 + 1, static_cast<uint32_t>(200 + i)));

  DeviceBuffer<float> xGpu(x), dyGpu(dy), weightGpu(weight), logitsGpu(logits),
      manyDOutGpu(manyDOut);
  DeviceBuffer<int32_t> idsGpu(ids), manyIdsGpu(manyIds);
  DeviceBuffer<float> qGpu(q), kGpu(k), vGpu(v);
  DeviceBuffer<float> gqaQGpu(gqaQ), gqaKGpu(gqaK), gqaVGpu(gqaV),
      gqaDOutGpu(gqaDOut);
  std::vector<DeviceBuffer<float>> normBuffers;
  std::vector<const float *> normPointers;
  std::vector<int64_t> normSizes;
  normBuffers.reserve(norms.size());
  for (const Floats &tensor : norms) {
    normBuffers.emplace_back(tensor);
    normPointers.push_back(normBuffers.back().get());
    normSizes.push_back(static_cast<int64_t>(tensor.size()));
  }

  // Every output of every kernel.
  auto run = [&] {
    std::vector<DeviceBuffer<float>> outs;
    outs.reserve(32);
    auto next = [&](int64_t count) -> float * {
      outs.emplace_back(count);
      return outs.back().get();
    };
    gpu::embeddingGrad(idsGpu.get(), rows, dyGpu.get(), vocab, hidden,
                       /*paddingId=*/-1, next(vocab * hidden));
    gpu::embeddingGrad(manyIdsGpu.get(), 5000, manyDOutGpu.get(), 50, hidden,
                       /*paddingId=*/-1, next(50 * hidden));
    float *dx = next(rows * hidden);
    gpu::rmsNormGrad(xGpu.get(), weightGpu.get(), dyGpu.get(), rows, hidden,
                     1e-5, dx, next(hidden));
    gpu::biasGrad(dyGpu.get(), rows, hidden, next(hidden));
    // Without a mask, causal, and within a window (of 40: inside the one
    // key tile of 64 positions, across those of 150).
    for (moert::AttentionMask mask :
         {moert::AttentionMask{false}, moert::AttentionMask{true},
          moert::AttentionMask{true, 40}}) {
      float *out = next(rows * hidden), *lse = next(batch * heads * seq);
      gpu::attention(qGpu.get(), kGpu.get(), vGpu.get(), nullptr, batch, seq,
                     heads, heads, headDim, mask, out, lse);
      float *dq = next(rows * hidden), *dk = next(rows * hidden);
      gpu::attentionGrad(qGpu.get(), kGpu.get(), vGpu.get(), out, lse,
                         dyGpu.get(), batch, seq, heads, heads, headDim, mask,
                         dq, dk, next(rows * hidden));
      out = next(gqaQGpu.size());
      lse = next(2 * gqaHeads * gqaSeq);
      gpu::attention(gqaQGpu.get(), gqaKGpu.get(), gqaVGpu.get(), nullptr, 2,
                     gqaSeq, gqaHeads, gqaKvHeads, gqaDim, mask, out, lse);
      dq = next(gqaQGpu.size());
      dk = next(gqaKGpu.size());
      gpu::attentionGrad(gqaQGpu.get(), gqaKGpu.get(), gqaVGpu.get(), out, lse,
                         gqaDOutGpu.get(), 2, gqaSeq, gqaHeads, gqaKvHeads,
                         gqaDim, mask, dq, dk, next(gqaVGpu.size()));
    }
    gpu::crossEntropy(logitsGpu.get(), idsGpu.get(), rows, vocab, {false, 0},
                      gpu::Divisor(static_cast<double>(rows)), next(1));
    gpu::globalNorm(normPointers.data(), normSizes.data(),
                    static_cast<int64_t>(normPointers.size()), next(1));
    return downloadAll(outs);
  };
  std::vector<Floats> first = run(), second = run();
  expectRunsBitwiseEqual(first, second);
}
