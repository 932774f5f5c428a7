//===- TransformerKernelsTest.cpp - reference transformer kernels ---------===//
//
// Small cases worked out by hand (the arithmetic is in the comments; the
// literals were evaluated with python3's math module, never with the code
// under test).
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/ReferenceKernels.h"

#include "FiniteDifferences.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

using namespace mlir::moe::ref;
using namespace moe::test;
using moe::test::gradients::Random;

//===----------------------------------------------------------------------===//
// embedding
//===----------------------------------------------------------------------===//

TEST(EmbeddingTest, GathersRowsForOneDimensionalIds) {
  Tensor table = f64({3, 2}, {1, 2, 3, 4, 5, 6});
  // ids {2, 0} -> rows {5, 6} and {1, 2}.
  expectTensor(embedding(table, i32({2}, {2, 0})), DType::F64, {2, 2},
               {5, 6, 1, 2});
}

TEST(EmbeddingTest, AppendsHiddenToIdShape) {
  Tensor table = f64({3, 2}, {1, 2, 3, 4, 5, 6});
  // ids [[1, 1, 0]] -> shape [1, 3, 2].
  expectTensor(embedding(table, i32({1, 3}, {1, 1, 0})), DType::F64, {1, 3, 2},
               {3, 4, 3, 4, 1, 2});
}

TEST(EmbeddingTest, KeepsTableElementType) {
  Tensor table{DType::F32, {2, 1}, {0.5, -0.5}};
  Tensor result = embedding(table, i32({1}, {1}));
  EXPECT_EQ(result.dtype, DType::F32);
  EXPECT_EQ(result.data, std::vector<double>{-0.5});
}

TEST(EmbeddingTest, OutOfRangeIdThrows) {
  Tensor table = f64({3, 2}, {1, 2, 3, 4, 5, 6});
  std::string tooLarge = errorOf([&] { embedding(table, i32({2}, {0, 3})); });
  EXPECT_NE(tooLarge.find("token id 3"), std::string::npos) << tooLarge;
  std::string negative = errorOf([&] { embedding(table, i32({1}, {-1})); });
  EXPECT_NE(negative.find("token id -1"), std::string::npos) << negative;
}

//===----------------------------------------------------------------------===//
// rms_norm
//===----------------------------------------------------------------------===//

TEST(RmsNormTest, NormalizesEachRowAndScalesByWeight) {
  // eps = 0.5, weight = {1, 2}.
  // Row {3, 4}:  mean(x^2) = 12.5, scale = 1/sqrt(13)
  //   -> {3/sqrt(13), 8/sqrt(13)} = {0.83205..., 2.21880...}.
  // Row {1, -1}: mean(x^2) = 1, scale = 1/sqrt(1.5)
  //   -> {1/sqrt(1.5), -2/sqrt(1.5)} = {0.81649..., -1.63299...}.
  Tensor input = f64({2, 2}, {3, 4, 1, -1});
  Tensor weight = f64({2}, {1, 2});
  expectTensor(rmsNorm(input, weight, 0.5), DType::F64, {2, 2},
               {0.8320502943378437, 2.2188007849009166, 0.8164965809277261,
                -1.6329931618554523});
}

TEST(RmsNormTest, ZeroEpsGivesUnitRootMeanSquare) {
  // {3, 4} / sqrt(12.5) = {0.6 * sqrt(2), 0.8 * sqrt(2)}.
  Tensor input = f64({1, 1, 2}, {3, 4});
  expectTensor(rmsNorm(input, f64({2}, {1, 1}), 0.0), DType::F64, {1, 1, 2},
               {0.6 * std::sqrt(2.0), 0.8 * std::sqrt(2.0)});
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

TEST(LinearTest, MultipliesByTransposedWeight) {
  // weight rows (out features): {1, 0, -1} and {0.5, 0.5, 0.5}.
  // Row {1, 2, 3}: {1 - 3, 0.5 * 6} = {-2, 3}.
  // Row {4, 5, 6}: {4 - 6, 0.5 * 15} = {-2, 7.5}.
  Tensor input = f64({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor weight = f64({2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  expectTensor(linear(input, weight, nullptr), DType::F64, {2, 2},
               {-2, 3, -2, 7.5});
}

TEST(LinearTest, AddsBias) {
  // As above plus bias {10, -1}: {8, 2, 8, 6.5}.
  Tensor input = f64({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor weight = f64({2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
  Tensor bias = f64({2}, {10, -1});
  expectTensor(linear(input, weight, &bias), DType::F64, {2, 2},
               {8, 2, 8, 6.5});
}

TEST(LinearTest, ReplacesLastAxisOfBatchedInput) {
  // [1, 2, 3] x [1, 3]^T, weights {1, 2, 3}: 1 + 4 + 9 = 14, 4 + 10 + 18 = 32.
  Tensor input = f64({1, 2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor weight = f64({1, 3}, {1, 2, 3});
  expectTensor(linear(input, weight, nullptr), DType::F64, {1, 2, 1}, {14, 32});
}

//===----------------------------------------------------------------------===//
// rope
//===----------------------------------------------------------------------===//

TEST(RopeTest, PositionZeroIsIdentity) {
  Tensor input = f64({1, 1, 2, 4}, {1, 2, 3, 4, -5, 6, -7, 8});
  expectTensor(rope(input, 10000.0), DType::F64, {1, 1, 2, 4},
               {1, 2, 3, 4, -5, 6, -7, 8});
}

TEST(RopeTest, PositionOneRotatesHalves) {
  // head_dim 4, theta 100: f_0 = 1, f_1 = 100^(-2/4) = 0.1; at pos 1 the
  // angles are a_0 = 1 and a_1 = 0.1. x = {1, 2, 3, 4}:
  //   y0 = 1 cos 1   - 3 sin 1   = -1.98411...
  //   y1 = 2 cos 0.1 - 4 sin 0.1 =  1.59067...
  //   y2 = 3 cos 1   + 1 sin 1   =  2.46237...
  //   y3 = 4 cos 0.1 + 2 sin 0.1 =  4.17968...
  // The token at position 0 ({9, 9, 9, 9}) is unchanged.
  Tensor input = f64({1, 2, 1, 4}, {9, 9, 9, 9, 1, 2, 3, 4});
  expectTensor(rope(input, 100.0), DType::F64, {1, 2, 1, 4},
               {9, 9, 9, 9, -1.9841106485555495, 1.590674663968739,
                2.4623779024123156, 4.17968349440576});
}

TEST(RopeTest, PositionOneRotatesInterleavedPairs) {
  // The same head, pairs (0, 1) at a_0 = 1 and (2, 3) at a_1 = 0.1:
  //   y0 = 1 cos 1   - 2 sin 1   = -1.14263...
  //   y1 = 2 cos 1   + 1 sin 1   =  1.92207...
  //   y2 = 3 cos 0.1 - 4 sin 0.1 =  2.58567...
  //   y3 = 4 cos 0.1 + 3 sin 0.1 =  4.27951...
  Tensor input = f64({1, 2, 1, 4}, {9, 9, 9, 9, 1, 2, 3, 4});
  expectTensor(rope(input, 100.0, false, {}, 0, /*interleaved=*/true),
               DType::F64, {1, 2, 1, 4},
               {9, 9, 9, 9, -1.1426396637476532, 1.922075596544176,
                2.585678829246765, 4.279516911052588});
}

TEST(RopeTest, PositionRestartsInEveryBatch) {
  // Batch element 1 also starts at position 0: it is left unchanged.
  Tensor input = f64({2, 1, 1, 2}, {1, 2, 3, 4});
  expectTensor(rope(input, 10000.0), DType::F64, {2, 1, 1, 2}, {1, 2, 3, 4});
}

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

namespace {
// One batch, seq 2, head_dim 2: q = {{1, 0}, {0, 1}}, k = {{1, 0}, {0, 2}},
// v = {{1, 2}, {3, 4}}, scale 1/sqrt(2).
const std::vector<double> kQuery = {1, 0, 0, 1};
const std::vector<double> kKey = {1, 0, 0, 2};
const std::vector<double> kValue = {1, 2, 3, 4};
} // namespace

TEST(AttentionTest, NonCausalAttendsToEveryPosition) {
  // Pos 0: scores {1/sqrt2, 0}; p1 = 1/(1 + e^(1/sqrt2)) = 0.330238...
  //   out = v0 + p1 (v1 - v0) = {1 + 2 p1, 2 + 2 p1}
  //       = {1.66047..., 2.66047...}.
  // Pos 1: scores {0, 2/sqrt2}; p1 = 1/(1 + e^(-sqrt2)) = 0.804429...
  //   out = {1 + 2 p1, 2 + 2 p1} = {2.60885..., 3.60885...}.
  Tensor q = f64({1, 2, 1, 2}, kQuery);
  Tensor k = f64({1, 2, 1, 2}, kKey);
  Tensor v = f64({1, 2, 1, 2}, kValue);
  expectTensor(attention(q, k, v, moert::AttentionMask{false}).result,
               DType::F64, {1, 2, 1, 2},
               {1.6604769013466862, 2.6604769013466862, 2.6088593650139136,
                3.608859365013914});
}

TEST(AttentionTest, CausalHidesLaterPositions) {
  // Pos 0 sees only itself: out = v0 = {1, 2}. Pos 1 sees both, as above.
  Tensor q = f64({1, 2, 1, 2}, kQuery);
  Tensor k = f64({1, 2, 1, 2}, kKey);
  Tensor v = f64({1, 2, 1, 2}, kValue);
  expectTensor(attention(q, k, v, moert::AttentionMask{true}).result,
               DType::F64, {1, 2, 1, 2},
               {1, 2, 2.6088593650139136, 3.608859365013914});
}

TEST(AttentionTest, SinkTakesItsShareOfTheSoftmax) {
  // Causal, as above, with a sink of 1/sqrt2 (pos 0's own score): pos 0's
  // probability halves, out = v0 / 2 = {0.5, 1}, lse = 1/sqrt2 + log 2.
  // Pos 1: scores {0, sqrt2} and the sink, so out = p0 v0 + p1 v1 with
  // p = exp(score) / (1 + e^sqrt2 + e^(1/sqrt2)) = {0.1606..., 0.6595...}.
  Tensor q = f64({1, 2, 1, 2}, kQuery);
  Tensor k = f64({1, 2, 1, 2}, kKey);
  Tensor v = f64({1, 2, 1, 2}, kValue);
  Tensor sinks = f64({1}, {std::sqrt(0.5)});
  AttentionResult r = attention(q, k, v, moert::AttentionMask{true}, &sinks);
  double denominator = 1 + std::exp(std::sqrt(2.0)) + std::exp(std::sqrt(0.5));
  double p0 = 1 / denominator, p1 = std::exp(std::sqrt(2.0)) / denominator;
  expectTensor(r.result, DType::F64, {1, 2, 1, 2},
               {0.5, 1, p0 + 3 * p1, 2 * p0 + 4 * p1});
  expectTensor(r.lse, DType::F64, {1, 1, 2},
               {std::sqrt(0.5) + std::log(2.0), std::log(denominator)});
}

TEST(AttentionTest, SinkScalesAsTransformersWritesIt) {
  // GraniteSWA's eager attention: the sink-free output times
  // sigmoid(lse - sink), lse the sink-free log-sum-exp; over grouped
  // heads, with a window.
  Random random(7);
  Tensor q = random.tensor({2, 5, 4, 3}, -1.5, 1.5);
  Tensor k = random.tensor({2, 5, 2, 3}, -1.5, 1.5);
  Tensor v = random.tensor({2, 5, 2, 3});
  Tensor sinks = random.tensor({4}, -2, 2);
  moert::AttentionMask mask{true, 3};
  AttentionResult plain = attention(q, k, v, mask);
  AttentionResult sunk = attention(q, k, v, mask, &sinks);
  std::vector<double> expected(plain.result.data.size());
  for (int64_t row = 0; row < 2 * 5 * 4; ++row) {
    int64_t b = row / 20, i = row / 4 % 5, h = row % 4;
    double lse = plain.lse.data[(b * 4 + h) * 5 + i];
    double scale = 1 / (1 + std::exp(sinks.data[h] - lse));
    for (int64_t d = 0; d < 3; ++d)
      expected[row * 3 + d] = plain.result.data[row * 3 + d] * scale;
  }
  expectTensor(sunk.result, DType::F64, {2, 5, 4, 3}, expected);
}

TEST(AttentionTest, LogSumExpIsPerHeadAndQueryRow) {
  // The scores of the two tests above: non-causal, pos 0 {1/sqrt2, 0} and
  // pos 1 {0, sqrt2}; causal, pos 0 sees only its score 1/sqrt2.
  Tensor q = f64({1, 2, 1, 2}, kQuery);
  Tensor k = f64({1, 2, 1, 2}, kKey);
  Tensor v = f64({1, 2, 1, 2}, kValue);
  expectTensor(attention(q, k, v, moert::AttentionMask{false}).lse, DType::F64,
               {1, 1, 2}, {1.1079403076572498, 1.6318352839548387});
  expectTensor(attention(q, k, v, moert::AttentionMask{true}).lse, DType::F64,
               {1, 1, 2}, {0.7071067811865476, 1.6318352839548387});
}

TEST(AttentionTest, GroupedQueryHeadsShareOneKvHead) {
  // Two query heads, one kv head (k, v as above). Head 0 has the queries
  // above; head 1 has q = {{0, 1}, {2, 0}}. Causal.
  // Head 1, pos 0: {1, 2}. Pos 1: scores {2/sqrt2, 0};
  //   p1 = 1/(1 + e^sqrt2) = 0.195570..., out = {1 + 2 p1, 2 + 2 p1}.
  // Layout [b, s, h, d]: s0h0, s0h1, s1h0, s1h1.
  Tensor q = f64({1, 2, 2, 2}, {1, 0, 0, 1, 0, 1, 2, 0});
  Tensor k = f64({1, 2, 1, 2}, kKey);
  Tensor v = f64({1, 2, 1, 2}, kValue);
  expectTensor(attention(q, k, v, moert::AttentionMask{true}).result,
               DType::F64, {1, 2, 2, 2},
               {1, 2, 1, 2, 2.6088593650139136, 3.608859365013914,
                1.3911406349860864, 2.3911406349860864});
}

TEST(AttentionTest, GroupedQueryMapsConsecutiveHeadsToOneKvHead) {
  // Four query heads, two kv heads, head_dim 1 (scale 1), non-causal:
  // heads 0 and 1 read kv head 0 (keys {0, 1}, values {10, 20}), heads 2 and
  // 3 read kv head 1 (keys {2, 0}, values {30, 50}). Every query is 1 at
  // position 0 and 2 at position 1.
  // kv 0, q = 1: scores {0, 1}: 10 + 10/(1 + e^-1) = 17.3105857...
  // kv 1, q = 1: scores {2, 0}: 30 + 20/(1 + e^2)  = 32.3840584...
  // kv 0, q = 2: scores {0, 2}: 10 + 10/(1 + e^-2) = 18.8079707...
  // kv 1, q = 2: scores {4, 0}: 30 + 20/(1 + e^4)  = 30.3597241...
  Tensor q = f64({1, 2, 4, 1}, {1, 1, 1, 1, 2, 2, 2, 2});
  Tensor k = f64({1, 2, 2, 1}, {0, 2, 1, 0});
  Tensor v = f64({1, 2, 2, 1}, {10, 30, 20, 50});
  const double a = 17.31058578630005, b = 32.384058440442345;
  const double c = 18.807970779778824, d = 30.35972419924183;
  expectTensor(attention(q, k, v, moert::AttentionMask{false}).result,
               DType::F64, {1, 2, 4, 1}, {a, a, b, b, c, c, d, d});
}

TEST(AttentionTest, BatchesDoNotMix) {
  // Batch 1 has equal keys so its output is the mean of its values
  // {0, 4} -> 2; batch 0 has a single visible position under causal masking
  // at pos 0 -> its own value.
  Tensor q = f64({2, 2, 1, 1}, {1, 1, 1, 1});
  Tensor k = f64({2, 2, 1, 1}, {0, 0, 3, 3});
  Tensor v = f64({2, 2, 1, 1}, {100, 200, 0, 4});
  // Batch 0: pos 0 -> 100; pos 1: equal scores -> 150.
  // Batch 1: pos 0 -> 0; pos 1 -> 2.
  expectTensor(attention(q, k, v, moert::AttentionMask{true}).result,
               DType::F64, {2, 2, 1, 1}, {100, 150, 0, 2});
}

TEST(AttentionTest, WindowHidesPositionsBeforeIt) {
  // Equal scores (keys 0): each query's output is the mean of the values
  // it sees, its log-sum-exp log(count). Within 2 positions: pos 0 sees
  // {3}, pos 1 {3, 6}, pos 2 {6, 12} (causal alone: all three, 7); within
  // 1 each sees its own.
  Tensor q = f64({1, 3, 1, 1}, {1, 1, 1});
  Tensor k = f64({1, 3, 1, 1}, {0, 0, 0});
  Tensor v = f64({1, 3, 1, 1}, {3, 6, 12});
  AttentionResult two = attention(q, k, v, moert::AttentionMask{true, 2});
  expectTensor(two.result, DType::F64, {1, 3, 1, 1}, {3, 4.5, 9});
  expectTensor(two.lse, DType::F64, {1, 1, 3}, {0, std::log(2), std::log(2)});
  expectTensor(attention(q, k, v, moert::AttentionMask{true, 1}).result,
               DType::F64, {1, 3, 1, 1}, {3, 6, 12});
  expectTensor(attention(q, k, v, moert::AttentionMask{true}).result,
               DType::F64, {1, 3, 1, 1}, {3, 4.5, 7});
}

//===----------------------------------------------------------------------===//
// swiglu, add, mul
//===----------------------------------------------------------------------===//

TEST(SwigluTest, SiluOfGateTimesUp) {
  // silu(0) * 5 = 0; silu(1) * 2 = 2/(1 + e^-1) = 1.46211...;
  // silu(-2) * 3 = -6/(1 + e^2) = -0.71521...
  Tensor result = swiglu(f64({3}, {0, 1, -2}), f64({3}, {5, 2, 3}));
  expectTensor(result, DType::F64, {3},
               {0.0, 1.4621171572600098, -0.7152175321327052});
}

TEST(SigmoidScaleTest, ScalesEachRowBySigmoidOfItsLogit) {
  // sigmoid(0) = 0.5; sigmoid(2) = 0.8807970779778823.
  Tensor result = sigmoidScale(f64({2, 2}, {3, -1, 2, 4}), f64({2, 1}, {0, 2}));
  expectTensor(result, DType::F64, {2, 2},
               {1.5, -0.5, 1.7615941559557646, 3.5231883119115293});
}

TEST(SigmoidScaleTest, ScalesEachElementBySigmoidOfItsOwnLogit) {
  Tensor result =
      sigmoidScale(f64({2, 2}, {3, -1, 2, 4}), f64({2, 2}, {0, 2, 2, 0}));
  expectTensor(result, DType::F64, {2, 2},
               {1.5, -0.8807970779778823, 1.7615941559557646, 2.0});
}

TEST(ElementwiseTest, AddSumsElementwise) {
  expectTensor(add(f64({2, 2}, {1, 2, 3, 4}), f64({2, 2}, {0.5, -2, 10, 0})),
               DType::F64, {2, 2}, {1.5, 0, 13, 4});
}

TEST(ElementwiseTest, MulMultipliesElementwise) {
  expectTensor(mul(f64({2, 2}, {1, 2, 3, 4}), f64({2, 2}, {0.5, -2, 10, 0})),
               DType::F64, {2, 2}, {0.5, -4, 30, 0});
}

//===----------------------------------------------------------------------===//
// cross_entropy
//===----------------------------------------------------------------------===//

TEST(CrossEntropyTest, MeanOfLogSumExpMinusTargetLogit) {
  // Row {0.5, 0, -1}, target 1: logsumexp = log(e^0.5 + 1 + e^-1)
  //   = 1.10413..., minus 0.
  // Row {1, 2, 3}, target 0: logsumexp = 3 + log(1 + e^-1 + e^-2) = 3.40760...,
  //   minus 1 = 2.40760...
  // Mean = (1.104130... + 2.407605...) / 2 = 1.75586...
  Tensor logits = f64({2, 3}, {0.5, 0, -1, 1, 2, 3});
  Tensor result = crossEntropy(logits, i32({2}, {1, 0}));
  expectTensor(result, DType::F64, {}, {1.7558682848905545});
}

TEST(CrossEntropyTest, AveragesOverAllLeadingAxes) {
  // Same rows as [1, 2, 3] logits with [1, 2] targets.
  Tensor logits = f64({1, 2, 3}, {0, 0, 0, 1, 2, 3});
  Tensor result = crossEntropy(logits, i32({1, 2}, {1, 0}));
  expectTensor(result, DType::F64, {}, {1.7531091265562453});
}

TEST(CrossEntropyTest, LargeLogitsDoNotOverflow) {
  // logits {1000, 1000}, target 0: logsumexp = 1000 + log 2, loss = log 2.
  Tensor result = crossEntropy(f64({1, 2}, {1000, 1000}), i32({1}, {0}));
  expectTensor(result, DType::F64, {}, {0.6931471805599453});
}

TEST(CrossEntropyTest, OutOfRangeTargetThrows) {
  Tensor logits = f64({2, 3}, {0, 0, 0, 1, 2, 3});
  std::string tooLarge = errorOf([&] {
    crossEntropy(logits, i32({2}, {0, 3}));
  });
  EXPECT_NE(tooLarge.find("target 3"), std::string::npos) << tooLarge;
  std::string negative = errorOf([&] {
    crossEntropy(logits, i32({2}, {-1, 0}));
  });
  EXPECT_NE(negative.find("target -1"), std::string::npos) << negative;
}
