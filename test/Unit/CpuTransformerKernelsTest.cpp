//===- CpuTransformerKernelsTest.cpp - f32 CPU transformer kernels --------===//
//
// Every transformer kernel of moert::cpu against its reference kernel (which
// computes in double) on random f32 inputs of several shapes, including
// sizes that are not multiples of the vector widths and grouped-query
// attention; out-of-range ids and targets throw before any output is
// written; and two runs give bitwise identical results.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moert/CpuKernels.h"

#include "Bf16TestUtils.h"
#include "CpuTestUtils.h"
#include "Softmax.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

using namespace moe::test;
namespace cpu = moert::cpu;
namespace ref = mlir::moe::ref;

namespace {

Tensor ids32(const Ids &ids) {
  return Tensor{
      DType::I32, {static_cast<int64_t>(ids.size())}, {ids.begin(), ids.end()}};
}

} // namespace

//===----------------------------------------------------------------------===//
// Embedding.
//===----------------------------------------------------------------------===//

TEST(CpuTransformerKernelsTest, EmbeddingAndGradMatchReference) {
  struct Case {
    int64_t vocab, hidden, count;
  };
  // Vocabularies larger and smaller than the count: rows nobody gathered
  // get zero gradient, repeated ids add up.
  for (Case c : {Case{1, 1, 1}, Case{7, 5, 13}, Case{256, 128, 768},
                 Case{33, 130, 50}, Case{1000, 3, 20}}) {
    std::string name = shapeName({c.vocab, c.hidden, c.count});
    Floats table = randomFloats(c.vocab * c.hidden, 1);
    Ids ids = randomIds(c.count, static_cast<int32_t>(c.vocab), 2);
    Floats y = output(c.count * c.hidden);
    cpu::embedding(table.data(), c.vocab, c.hidden, ids.data(), c.count,
                   y.data());
    expectClose(y, ref::embedding(f32({c.vocab, c.hidden}, table), ids32(ids)),
                "embedding " + name);

    // Without a padding id, and with the first id's row as padding.
    Floats dOut = randomFloats(c.count * c.hidden, 3);
    for (std::optional<int64_t> padding :
         {std::optional<int64_t>(), std::optional<int64_t>(ids[0])}) {
      Floats dTable = output(c.vocab * c.hidden);
      cpu::embeddingGrad(ids.data(), c.count, dOut.data(), c.vocab, c.hidden,
                         padding.value_or(-1), dTable.data());
      expectClose(dTable,
                  ref::embeddingGrad(ids32(ids), f32({c.count, c.hidden}, dOut),
                                     c.vocab, padding),
                  "embeddingGrad " + name +
                      (padding ? " padding " + std::to_string(*padding) : ""));
      if (padding) {
        EXPECT_EQ(Floats(dTable.begin() + *padding * c.hidden,
                         dTable.begin() + (*padding + 1) * c.hidden),
                  Floats(c.hidden, 0.0f))
            << name;
      }
    }
  }
}

TEST(CpuTransformerKernelsTest, OutOfRangeIdsAndTargetsThrowBeforeWriting) {
  int64_t vocab = 256, hidden = 4;
  Floats table = randomFloats(vocab * hidden, 1);
  for (int32_t bad : {300, 256, -1}) {
    Ids ids = {5, bad, 7};
    std::string expected = errorOf([&] {
      ref::embedding(f32({vocab, hidden}, table), ids32(ids));
    });
    ASSERT_TRUE(contains(expected, "moe.embedding: token id " +
                                       std::to_string(bad) +
                                       " is outside [0, 256)"))
        << expected;

    Floats y(3 * hidden, 42.0f);
    EXPECT_EQ(errorOf([&] {
                cpu::embedding(table.data(), vocab, hidden, ids.data(), 3,
                               y.data());
              }),
              expected);
    EXPECT_EQ(y, Floats(3 * hidden, 42.0f)) << "written before the check";

    Floats dOut = randomFloats(3 * hidden, 2);
    Floats dTable(vocab * hidden, 42.0f);
    EXPECT_EQ(errorOf([&] {
                cpu::embeddingGrad(ids.data(), 3, dOut.data(), vocab, hidden,
                                   /*paddingId=*/-1, dTable.data());
              }),
              expected);
    EXPECT_EQ(dTable, Floats(vocab * hidden, 42.0f));

    // Cross-entropy targets, [3, vocab] logits.
    Floats logits = randomFloats(3 * vocab, 3);
    std::string expectedTarget = errorOf([&] {
      ref::crossEntropy(f32({3, vocab}, logits), ids32(ids), {-100, 3.0});
    });
    ASSERT_TRUE(contains(expectedTarget, "moe.cross_entropy: target " +
                                             std::to_string(bad) +
                                             " is outside [0, 256)"))
        << expectedTarget;
    EXPECT_EQ(errorOf([&] {
                cpu::crossEntropy(logits.data(), ids.data(), 3, vocab,
                                  {true, -100}, 3);
              }),
              expectedTarget);
    Floats dLogits(3 * vocab, 42.0f);
    EXPECT_EQ(errorOf([&] {
                cpu::crossEntropyGrad(logits.data(), ids.data(), 3, vocab,
                                      {true, -100}, 3, 1.0f, dLogits.data());
              }),
              expectedTarget);
    EXPECT_EQ(dLogits, Floats(3 * vocab, 42.0f));
  }
}

//===----------------------------------------------------------------------===//
// RMS norm and linear layers.
//===----------------------------------------------------------------------===//

TEST(CpuTransformerKernelsTest, RmsNormAndGradMatchReference) {
  struct Case {
    int64_t rows, hidden;
    double eps;
  };
  for (Case c : {Case{1, 1, 1e-5}, Case{3, 5, 1e-6}, Case{768, 128, 1e-5},
                 Case{17, 130, 1e-5}, Case{300, 1001, 1e-6}}) {
    std::string name = shapeName({c.rows, c.hidden});
    Floats x = randomFloats(c.rows * c.hidden, 1, 2.0f);
    Floats weight = randomFloats(c.hidden, 2);
    Floats dy = randomFloats(c.rows * c.hidden, 3);
    Tensor xRef = f32({c.rows, c.hidden}, x), wRef = f32({c.hidden}, weight);

    Floats y = output(c.rows * c.hidden);
    cpu::rmsNorm(x.data(), weight.data(), c.rows, c.hidden, c.eps, y.data());
    expectClose(y, ref::rmsNorm(xRef, wRef, c.eps), "rmsNorm " + name);
    // A narrowed result is the f32 one rounded, bit for bit.
    Halves narrowedY(y.size());
    cpu::rmsNorm(x.data(), weight.data(), c.rows, c.hidden, c.eps,
                 narrowedY.data());
    expectBitwiseEqual(narrowedY, narrowed(y), "rmsNorm into bf16 " + name);

    Floats dx = output(c.rows * c.hidden), dWeight = output(c.hidden);
    cpu::rmsNormGrad(x.data(), weight.data(), dy.data(), c.rows, c.hidden,
                     c.eps, dx.data(), dWeight.data());
    ref::RmsNormGrads grads =
        ref::rmsNormGrad(xRef, wRef, c.eps, f32({c.rows, c.hidden}, dy));
    expectClose(dx, grads.dInput, "rmsNormGrad dx " + name);
    expectClose(dWeight, grads.dWeight, "rmsNormGrad dWeight " + name);

    // A bf16 input (the stored activation) gives the f32 input's results
    // for the widened values, bit for bit.
    Halves stored = narrowed(x);
    Floats widenedX = widened(stored);
    Floats dxOfWidened = output(dx.size()), dWeightOfWidened = output(c.hidden);
    cpu::rmsNormGrad(widenedX.data(), weight.data(), dy.data(), c.rows,
                     c.hidden, c.eps, dxOfWidened.data(),
                     dWeightOfWidened.data());
    Floats dxOfStored = output(dx.size()), dWeightOfStored = output(c.hidden);
    cpu::rmsNormGrad(stored.data(), weight.data(), dy.data(), c.rows, c.hidden,
                     c.eps, dxOfStored.data(), dWeightOfStored.data());
    expectBitwiseEqual(dxOfStored, dxOfWidened,
                       "rmsNormGrad dx of bf16 " + name);
    expectBitwiseEqual(dWeightOfStored, dWeightOfWidened,
                       "rmsNormGrad dWeight of bf16 " + name);
  }
}

// eps is added to the mean square, inside the square root: on rows as small
// as activations can be, where eps is not negligible (the random rows above
// are ~1, where eps outside the root differs by less than the tolerance).
// Rows of +-0.003: mean square 9e-6, plus eps 1.6e-5 is 2.5e-5, whose root
// is 0.005, so y = +-0.003 / 0.005 * 2 = +-1.2 (eps outside the root would
// give 0.003 / 0.003016 * 2 = 1.989).
TEST(CpuTransformerKernelsTest, RmsNormAddsEpsInsideTheRoot) {
  const int64_t rows = 2, hidden = 37;
  Floats x(rows * hidden), weight(hidden, 2.0f);
  for (int64_t i = 0; i < hidden; ++i) {
    x[i] = 0.003f;
    x[hidden + i] = -0.003f;
  }
  Floats y = output(rows * hidden);
  cpu::rmsNorm(x.data(), weight.data(), rows, hidden, 1.6e-5, y.data());
  for (int64_t i = 0; i < hidden; ++i) {
    EXPECT_NEAR(y[i], 1.2f, 1e-5) << i;
    EXPECT_NEAR(y[hidden + i], -1.2f, 1e-5) << i;
  }
}

TEST(CpuTransformerKernelsTest, RmsNormGradIsTheSameOnAnyThreadCount) {
  // 300 rows: 9 blocks of 37 rows for the weight gradient's partial sums,
  // the last one short, over one thread and over three.
  const int64_t rows = 300, hidden = 130;
  Floats x = randomFloats(rows * hidden, 1, 2.0f);
  Floats weight = randomFloats(hidden, 2), dy = randomFloats(rows * hidden, 3);
  auto run = [&] {
    Floats dx = output(rows * hidden), dWeight = output(hidden);
    cpu::rmsNormGrad(x.data(), weight.data(), dy.data(), rows, hidden, 1e-5,
                     dx.data(), dWeight.data());
    return std::make_pair(dx, dWeight);
  };
  auto [dx1, dWeight1] = onThreads(1, run);
  auto [dx3, dWeight3] = onThreads(3, run);
  expectBitwiseEqual(dx1, dx3, "rmsNormGrad dx");
  expectBitwiseEqual(dWeight1, dWeight3, "rmsNormGrad dWeight");
}

TEST(CpuTransformerKernelsTest, LinearAndGradsMatchReference) {
  struct Case {
    int64_t rows, in, out;
  };
  // No rows: empty outputs, zero weight and bias gradients; no inputs: the
  // bias alone (or zeros), an empty weight gradient.
  for (Case c :
       {Case{1, 1, 1}, Case{7, 5, 3}, Case{768, 128, 128}, Case{768, 128, 256},
        Case{33, 130, 257}, Case{0, 5, 3}, Case{4, 0, 3}}) {
    std::string name = shapeName({c.rows, c.in, c.out});
    Floats x = randomFloats(c.rows * c.in, 1);
    Floats weight = randomFloats(c.out * c.in, 2);
    Floats bias = randomFloats(c.out, 3);
    Floats dy = randomFloats(c.rows * c.out, 4);
    Tensor xRef = f32({c.rows, c.in}, x), wRef = f32({c.out, c.in}, weight);
    Tensor bRef = f32({c.out}, bias), dyRef = f32({c.rows, c.out}, dy);

    Floats y = output(c.rows * c.out);
    cpu::linear(x.data(), weight.data(), nullptr, c.rows, c.in, c.out,
                y.data());
    expectClose(y, ref::linear(xRef, wRef, nullptr), "linear " + name);
    y = output(c.rows * c.out);
    cpu::linear(x.data(), weight.data(), bias.data(), c.rows, c.in, c.out,
                y.data());
    expectClose(y, ref::linear(xRef, wRef, &bRef), "linear+bias " + name);

    Floats dx = output(c.rows * c.in);
    cpu::linearInputGrad(dy.data(), weight.data(), c.rows, c.in, c.out,
                         dx.data());
    expectClose(dx, ref::linearInputGrad(dyRef, wRef),
                "linearInputGrad " + name);
    Floats dWeight = output(c.out * c.in);
    cpu::linearWeightGrad(dy.data(), x.data(), c.rows, c.in, c.out,
                          dWeight.data());
    expectClose(dWeight, ref::linearWeightGrad(dyRef, xRef),
                "linearWeightGrad " + name);
    Floats dBias = output(c.out);
    cpu::biasGrad(dy.data(), c.rows, c.out, dBias.data());
    expectClose(dBias, ref::biasGrad(dyRef), "biasGrad " + name);
  }
}

//===----------------------------------------------------------------------===//
// RoPE and attention.
//===----------------------------------------------------------------------===//

TEST(CpuTransformerKernelsTest, RopeMatchesReferenceAndInverts) {
  for (const RopeCase &c : kRopeCases) {
    std::string name = c.name();
    std::vector<int64_t> shape = {c.batch, c.seq, c.heads, c.headDim};
    int64_t count = c.batch * c.seq * c.heads * c.headDim;
    Floats x = randomFloats(count, 1);
    for (bool inverse : {false, true}) {
      Floats y = output(count);
      cpu::rope(x.data(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
                c.theta, c.scaling, inverse, c.interleaved, y.data());
      expectClose(y,
                  ref::rope(f32(shape, x), c.theta, inverse, c.scaling,
                            c.rotaryDim, c.interleaved),
                  "rope " + name + (inverse ? " inverse" : ""));
      // A narrowed result is the f32 one rounded, bit for bit.
      std::vector<moert::bf16> narrowed(count), expected(count);
      cpu::rope(x.data(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
                c.theta, c.scaling, inverse, c.interleaved, narrowed.data());
      cpu::convert(y.data(), count, expected.data());
      expectBitwiseEqual(narrowed, expected,
                         "rope into bf16 " + name +
                             (inverse ? " inverse" : ""));
    }
    // The inverse is rope's transpose, and a rotation's transpose undoes it
    // (YaRN's attention factor applies twice, to the rotated dimensions).
    Floats rotated = output(count), back = output(count);
    cpu::rope(x.data(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
              c.theta, c.scaling, false, c.interleaved, rotated.data());
    cpu::rope(rotated.data(), c.batch, c.seq, c.heads, c.headDim, c.rotated(),
              c.theta, c.scaling, true, c.interleaved, back.data());
    double twice = c.scaling.attentionFactor * c.scaling.attentionFactor;
    Floats expected = x;
    for (int64_t i = 0; i < count; ++i)
      if (i % c.headDim < c.rotated())
        expected[i] = static_cast<float>(expected[i] * twice);
    expectClose(back, f32(shape, expected), "rope round trip " + name);
  }
}

TEST(CpuTransformerKernelsTest, AttentionMatchesReference) {
  for (AttentionCase c : kAttentionCases)
    for (moert::AttentionMask mask : attentionMasks(c))
      for (bool withSinks : {false, true}) {
        std::string name = c.name(mask) + (withSinks ? " sinks" : "");
        std::vector<int64_t> qShape = c.queryShape(), kvShape = c.keyShape();
        int64_t qCount = c.queryCount(), kvCount = c.keyCount();
        auto [q, k, v, dOut] = attentionInputs(c);
        Tensor qRef = f32(qShape, q), kRef = f32(kvShape, k);
        Tensor vRef = f32(kvShape, v);
        Floats sinks(c.heads);
        for (int64_t h = 0; h < c.heads; ++h)
          sinks[h] = 0.75f - 0.5f * static_cast<float>(h % 4);
        Tensor sinksRef = f32({c.heads}, sinks);
        const float *sinksIn = withSinks ? sinks.data() : nullptr;

        std::vector<int64_t> lseShape = {c.batch, c.heads, c.seq};
        Floats out = output(qCount), lse = output(c.batch * c.heads * c.seq);
        cpu::attention(q.data(), k.data(), v.data(), sinksIn, c.batch, c.seq,
                       c.heads, c.kvHeads, c.headDim, mask, out.data(),
                       lse.data());
        ref::AttentionResult expected = ref::attention(
            qRef, kRef, vRef, mask, withSinks ? &sinksRef : nullptr);
        expectClose(out, expected.result, "attention " + name);
        expectClose(lse, expected.lse, "attention lse " + name);

        // The gradients of both from the same forward.
        Floats dq = output(qCount), dk = output(kvCount), dv = output(kvCount);
        cpu::attentionGrad(q.data(), k.data(), v.data(), out.data(), lse.data(),
                           dOut.data(), c.batch, c.seq, c.heads, c.kvHeads,
                           c.headDim, mask, dq.data(), dk.data(), dv.data());
        ref::AttentionGrads grads =
            ref::attentionGrad(qRef, kRef, vRef, f32(qShape, out),
                               f32(lseShape, lse), mask, f32(qShape, dOut));
        expectClose(dq, grads.dQuery, "attentionGrad dq " + name);
        expectClose(dk, grads.dKey, "attentionGrad dk " + name);
        expectClose(dv, grads.dValue, "attentionGrad dv " + name);
        if (!withSinks)
          continue;
        Floats dSinks = output(c.heads);
        cpu::attentionSinksGrad(sinks.data(), lse.data(), out.data(),
                                dOut.data(), c.batch, c.seq, c.heads, c.headDim,
                                dSinks.data());
        expectClose(dSinks,
                    ref::attentionSinksGrad(sinksRef, f32(lseShape, lse),
                                            f32(qShape, out),
                                            f32(qShape, dOut)),
                    "attentionSinksGrad " + name);
      }
}

//===----------------------------------------------------------------------===//
// Elementwise ops and cross-entropy.
//===----------------------------------------------------------------------===//

TEST(CpuTransformerKernelsTest, SigmoidScaleMatchesReference) {
  // Rows of odd widths, up to past the size where the loop goes parallel.
  for (auto [rows, hidden] :
       {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {70, 1025}, {300, 512}}) {
    std::string name = std::to_string(rows) + "x" + std::to_string(hidden);
    Floats x = randomFloats(rows * hidden, 1),
           logit = randomFloats(rows, 2, 4.0f),
           dy = randomFloats(rows * hidden, 3);
    // Saturated logits on both sides.
    logit[0] = 100.0f;
    if (rows > 1)
      logit[1] = -100.0f;
    Tensor xRef = f32({rows, hidden}, x), logitRef = f32({rows, 1}, logit);

    Floats y = output(rows * hidden);
    cpu::sigmoidScale(x.data(), logit.data(), rows, hidden, y.data());
    expectClose(y, ref::sigmoidScale(xRef, logitRef), "sigmoidScale " + name);
    Floats dx = output(rows * hidden), dLogit = output(rows);
    cpu::sigmoidScaleGrad(x.data(), logit.data(), dy.data(), rows, hidden,
                          dx.data(), dLogit.data());
    ref::SigmoidScaleGrads grads =
        ref::sigmoidScaleGrad(xRef, logitRef, f32({rows, hidden}, dy));
    expectClose(dx, grads.dInput, "sigmoidScaleGrad dx " + name);
    expectClose(dLogit, grads.dLogit, "sigmoidScaleGrad dLogit " + name);
  }
}

TEST(CpuTransformerKernelsTest, ElementwiseOpsMatchReference) {
  // Up to past the size where the loops go parallel, with odd tails.
  for (int64_t count : {1, 7, 1000, 1025, 70001}) {
    std::string name = std::to_string(count);
    Floats gate = randomFloats(count, 1, 4.0f), up = randomFloats(count, 2);
    Floats dy = randomFloats(count, 3);
    // Saturated gates, past the exp's clamp on both sides.
    gate[0] = 100.0f;
    if (count > 1)
      gate[1] = -100.0f;
    Tensor gateRef = f32({count}, gate), upRef = f32({count}, up);

    Floats y = output(count);
    cpu::swiglu(gate.data(), up.data(), count, y.data());
    expectClose(y, ref::swiglu(gateRef, upRef), "swiglu " + name);
    Floats dGate = output(count), dUp = output(count);
    cpu::swigluGrad(gate.data(), up.data(), dy.data(), count, dGate.data(),
                    dUp.data());
    ref::SwigluGrads grads = ref::swigluGrad(gateRef, upRef, f32({count}, dy));
    expectClose(dGate, grads.dGate, "swigluGrad dGate " + name);
    expectClose(dUp, grads.dUp, "swigluGrad dUp " + name);

    y = output(count);
    cpu::add(gate.data(), up.data(), count, y.data());
    expectClose(y, ref::add(gateRef, upRef), "add " + name);
    y = output(count);
    cpu::mul(gate.data(), up.data(), count, y.data());
    expectClose(y, ref::mul(gateRef, upRef), "mul " + name);
    y = output(count);
    cpu::scale(gate.data(), 0.22, count, y.data());
    expectClose(y, ref::scale(gateRef, 0.22), "scale " + name);
  }
}

TEST(CpuTransformerKernelsTest, LastDimLayoutMatchesReference) {
  // [outer, heads, width] pieces, the larger past the size where the loops
  // go parallel; a part of one head on either side.
  struct Case {
    int64_t outer, heads, lhsHeads, lhsWidth, rhsHeads, rhsWidth;
  };
  for (Case c : {Case{1, 1, 1, 3, 1, 5}, Case{3, 4, 4, 6, 1, 2},
                 Case{2, 4, 1, 2, 4, 6}, Case{128, 8, 8, 48, 1, 16}}) {
    std::string name = std::to_string(c.outer) + "x" + std::to_string(c.heads) +
                       "x" + std::to_string(c.lhsWidth) + "+" +
                       std::to_string(c.rhsWidth);
    int64_t rows = c.outer * c.heads, width = c.lhsWidth + c.rhsWidth;
    std::vector<int64_t> lhsShape{c.outer, c.lhsHeads, c.lhsWidth},
        rhsShape{c.outer, c.rhsHeads, c.rhsWidth},
        shape{c.outer, c.heads, width};
    Floats lhs = randomFloats(c.outer * c.lhsHeads * c.lhsWidth, 1);
    Floats rhs = randomFloats(c.outer * c.rhsHeads * c.rhsWidth, 2);
    Floats dy = randomFloats(rows * width, 3);

    Floats y = output(rows * width);
    cpu::concat(lhs.data(), rhs.data(), rows, c.heads, c.lhsHeads, c.lhsWidth,
                c.rhsHeads, c.rhsWidth, y.data());
    expectClose(y, ref::concat(f32(lhsShape, lhs), f32(rhsShape, rhs), shape),
                "concat " + name, 0.0);
    Floats dLhs = output(lhs.size()), dRhs = output(rhs.size());
    cpu::concatGrad(dy.data(), rows, c.heads, c.lhsHeads, c.lhsWidth,
                    c.rhsHeads, c.rhsWidth, dLhs.data(), dRhs.data());
    ref::ConcatGrads grads =
        ref::concatGrad(f32(shape, dy), lhsShape, rhsShape);
    expectClose(dLhs, grads.dLhs, "concatGrad dLhs " + name);
    expectClose(dRhs, grads.dRhs, "concatGrad dRhs " + name);

    // The rhs's window of each row, and back.
    Floats window = output(rows * c.rhsWidth);
    cpu::slice(dy.data(), rows, width, c.lhsWidth, c.rhsWidth, window.data());
    Tensor windowRef = ref::slice(f32(shape, dy), c.lhsWidth, c.rhsWidth);
    expectClose(window, windowRef, "slice " + name, 0.0);
    Floats padded = randomFloats(rows * width, 4);
    cpu::pad(window.data(), rows, c.rhsWidth, c.lhsWidth, width, padded.data());
    expectClose(padded, ref::pad(windowRef, c.lhsWidth, width), "pad " + name,
                0.0);
  }
}

TEST(CpuTransformerKernelsTest, RowMaxIsTheLargestValueAndSkipsNaNs) {
  // The softmax rows' and cross-entropy's maximum, on vectors: every length
  // around the vector widths, the maximum in every lane and in the tail.
  Floats values = randomFloats(80, 7);
  for (int64_t n = 0; n <= 80; ++n) {
    float expected = -HUGE_VALF;
    for (int64_t i = 0; i < n; ++i)
      expected = std::max(expected, values[i]);
    EXPECT_EQ(cpu::detail::rowMax(values.data(), n), expected) << "n " << n;
    if (n == 0)
      continue;
    // A NaN is skipped wherever it is, as std::max(maximum, x) skips it.
    Floats withNaN(values.begin(), values.begin() + n);
    withNaN[n / 2] = NAN;
    float withoutIt = -HUGE_VALF;
    for (int64_t i = 0; i < n; ++i)
      if (i != n / 2)
        withoutIt = std::max(withoutIt, withNaN[i]);
    EXPECT_EQ(cpu::detail::rowMax(withNaN.data(), n), withoutIt)
        << "n " << n << " with a NaN";
  }
  for (int64_t top = 0; top < 40; ++top) {
    Floats row(40, -3.0f);
    row[top] = 2.5f;
    EXPECT_EQ(cpu::detail::rowMax(row.data(), 40), 2.5f)
        << "maximum at " << top;
  }
}

TEST(CpuTransformerKernelsTest, CrossEntropyAndGradMatchReference) {
  struct Case {
    int64_t rows, vocab;
    float stddev, dLoss;
  };
  // Large logits check the max shift; a vocab of one gives a zero loss.
  for (Case c : {Case{1, 1, 1, 1}, Case{5, 7, 1, 1}, Case{768, 256, 2, 1},
                 Case{50, 1001, 30, 0.37f}, Case{3, 9, 100, -2}}) {
    std::string name = shapeName({c.rows, c.vocab});
    Floats logits = randomFloats(c.rows * c.vocab, 1, c.stddev);
    Ids targets = randomIds(c.rows, static_cast<int32_t>(c.vocab), 2);
    Tensor logitsRef = f32({c.rows, c.vocab}, logits);

    // Every row; then with transformers' -100 on every third row, divided by
    // the count; then with every row ignored (divisor 0 gives 0).
    Ids masked = targets, allIgnored(c.rows, -100);
    for (int64_t r = 0; r < c.rows; r += 3)
      masked[r] = -100;
    struct Variant {
      const Ids &targets;
      cpu::CountedTargets counted;
      std::string what;
    };
    for (const Variant &v :
         {Variant{targets, {false, 0}, ""},
          Variant{masked, {true, -100}, " ignoring -100"},
          Variant{allIgnored, {true, -100}, " all ignored"}}) {
      ref::LossTargets counted;
      if (v.counted.ignores) {
        counted.ignoreIndex = v.counted.ignoreIndex;
        counted.divisor =
            ref::countTargets(ids32(v.targets), -100, DType::F32).data[0];
        EXPECT_EQ(cpu::countTargets(v.targets.data(), c.rows, v.counted),
                  *counted.divisor);
      }
      double divisor = counted.divisor.value_or(c.rows);
      float loss = cpu::crossEntropy(logits.data(), v.targets.data(), c.rows,
                                     c.vocab, v.counted, divisor);
      Tensor expected = ref::crossEntropy(logitsRef, ids32(v.targets), counted);
      EXPECT_NEAR(loss, expected.data[0],
                  1e-5 * std::max(1.0, std::abs(expected.data[0])))
          << "crossEntropy " << name << v.what;

      Floats dLogits = output(c.rows * c.vocab);
      cpu::crossEntropyGrad(logits.data(), v.targets.data(), c.rows, c.vocab,
                            v.counted, divisor, c.dLoss, dLogits.data());
      expectClose(dLogits,
                  ref::crossEntropyGrad(logitsRef, ids32(v.targets),
                                        Tensor::scalar(DType::F32, c.dLoss),
                                        counted),
                  "crossEntropyGrad " + name + v.what);
      // A narrowed gradient is the f32 one rounded, bit for bit.
      Halves narrowedDLogits(dLogits.size());
      cpu::crossEntropyGrad(logits.data(), v.targets.data(), c.rows, c.vocab,
                            v.counted, divisor, c.dLoss,
                            narrowedDLogits.data());
      expectBitwiseEqual(narrowedDLogits, narrowed(dLogits),
                         "crossEntropyGrad into bf16 " + name + v.what);
    }
    EXPECT_EQ(cpu::crossEntropy(logits.data(), allIgnored.data(), c.rows,
                                c.vocab, {true, -100}, 0),
              0.0f);
  }
}

//===----------------------------------------------------------------------===//
// Determinism: two runs, same bits.
//===----------------------------------------------------------------------===//

TEST(CpuTransformerKernelsTest, RunsAreBitwiseReproducible) {
  // The benchmark's shapes: batch 12 x seq 64, hidden 128, 4 heads, vocab
  // 256, big enough for every kernel to run in parallel.
  const int64_t batch = 12, seq = 64, heads = 4, headDim = 32, hidden = 128;
  const int64_t rows = batch * seq, vocab = 256, ffn = 384;
  Floats x = randomFloats(rows * hidden, 1),
         dy = randomFloats(rows * hidden, 2);
  Floats weight = randomFloats(hidden * hidden, 3),
         bias = randomFloats(hidden, 4);
  Floats q = randomFloats(rows * hidden, 5), k = randomFloats(rows * hidden, 6);
  Floats v = randomFloats(rows * hidden, 7);
  Floats table = randomFloats(vocab * hidden, 8);
  Floats logits = randomFloats(rows * vocab, 9, 2.0f);
  Floats gate = randomFloats(rows * ffn, 10), up = randomFloats(rows * ffn, 11);
  Floats dFfn = randomFloats(rows * ffn, 12);
  Ids ids = randomIds(rows, static_cast<int32_t>(vocab), 13);

  // Every output of every kernel, concatenated.
  auto run = [&] {
    std::vector<Floats> outs;
    auto next = [&](int64_t count) -> float * {
      outs.push_back(output(count));
      return outs.back().data();
    };
    cpu::embedding(table.data(), vocab, hidden, ids.data(), rows,
                   next(rows * hidden));
    cpu::embeddingGrad(ids.data(), rows, dy.data(), vocab, hidden,
                       /*paddingId=*/-1, next(vocab * hidden));
    cpu::rmsNorm(x.data(), bias.data(), rows, hidden, 1e-5,
                 next(rows * hidden));
    float *dx = next(rows * hidden);
    cpu::rmsNormGrad(x.data(), bias.data(), dy.data(), rows, hidden, 1e-5, dx,
                     next(hidden));
    cpu::linear(x.data(), weight.data(), bias.data(), rows, hidden, hidden,
                next(rows * hidden));
    cpu::linearInputGrad(dy.data(), weight.data(), rows, hidden, hidden,
                         next(rows * hidden));
    cpu::linearWeightGrad(dy.data(), x.data(), rows, hidden, hidden,
                          next(hidden * hidden));
    cpu::biasGrad(dy.data(), rows, hidden, next(hidden));
    cpu::rope(q.data(), batch, seq, heads, headDim, headDim, 10000, {}, false,
              false, next(rows * hidden));
    float *out = nullptr, *lse = nullptr;
    // Without a mask, causal, and within a window across blocks of queries.
    for (moert::AttentionMask mask :
         {moert::AttentionMask{false}, moert::AttentionMask{true},
          moert::AttentionMask{true, 20}}) {
      out = next(rows * hidden);
      lse = next(batch * heads * seq);
      cpu::attention(q.data(), k.data(), v.data(), nullptr, batch, seq, heads,
                     heads, headDim, mask, out, lse);
      float *dq = next(rows * hidden), *dk = next(rows * hidden);
      cpu::attentionGrad(q.data(), k.data(), v.data(), out, lse, dy.data(),
                         batch, seq, heads, heads, headDim, mask, dq, dk,
                         next(rows * hidden));
    }
    // Grouped queries: 4 heads on 2 kv heads share dK and dV sums.
    float *dq = next(rows * hidden), *dk = next(rows * hidden / 2);
    cpu::attentionGrad(q.data(), k.data(), v.data(), out, lse, dy.data(), batch,
                       seq, heads, 2, headDim, moert::AttentionMask{true}, dq,
                       dk, next(rows * hidden / 2));
    cpu::swiglu(gate.data(), up.data(), rows * ffn, next(rows * ffn));
    float *dGate = next(rows * ffn);
    cpu::swigluGrad(gate.data(), up.data(), dFfn.data(), rows * ffn, dGate,
                    next(rows * ffn));
    cpu::add(gate.data(), up.data(), rows * ffn, next(rows * ffn));
    cpu::mul(gate.data(), up.data(), rows * ffn, next(rows * ffn));
    *next(1) = cpu::crossEntropy(logits.data(), ids.data(), rows, vocab,
                                 {false, 0}, rows);
    cpu::crossEntropyGrad(logits.data(), ids.data(), rows, vocab, {false, 0},
                          rows, 1.0f, next(rows * vocab));
    return outs;
  };
  std::vector<Floats> first = run(), second = run();
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i)
    expectBitwiseEqual(first[i], second[i], "output " + std::to_string(i));
}
