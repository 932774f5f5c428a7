//===- RoutingKernelsTest.cpp - reference routing and aux-loss kernels ----===//
//
// Small cases worked out by hand against DESIGN.md section 2 and the op
// descriptions in MoeOps.td (the arithmetic is in the comments; literals were
// evaluated with python3's math module, never with the code under test).
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/ReferenceKernels.h"

#include "TestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

using namespace mlir::moe::ref;
using namespace moe::test;

//===----------------------------------------------------------------------===//
// gate
//===----------------------------------------------------------------------===//

// softmax({1, 2, 3}) = e^{1,2,3} / (e + e^2 + e^3)
//   = {0.0900305..., 0.2447284..., 0.6652409...}.
constexpr double kP0 = 0.09003057317038046;
constexpr double kP1 = 0.24472847105479764;
constexpr double kP2 = 0.6652409557748218;

TEST(GateTest, SoftmaxTopKWithoutRenormalization) {
  GateResult result = gate(f64({1, 3}, {1, 2, 3}), /*topK=*/2, std::nullopt,
                           1e-6, /*renormalize=*/false);
  expectTensor(result.probs, DType::F64, {1, 3}, {kP0, kP1, kP2});
  expectTensor(result.indices, DType::I32, {1, 2}, {2, 1});
  expectTensor(result.weights, DType::F64, {1, 2}, {kP2, kP1});
}

TEST(GateTest, RenormalizeDividesBySelectedSum) {
  // p2 / (p2 + p1) = e^3 / (e^3 + e^2) = 1 / (1 + e^-1) = 0.7310585...
  // p1 / (p2 + p1) = 1 / (1 + e)                       = 0.2689414...
  GateResult result = gate(f64({1, 3}, {1, 2, 3}), /*topK=*/2, std::nullopt,
                           1e-6, /*renormalize=*/true);
  expectTensor(result.probs, DType::F64, {1, 3}, {kP0, kP1, kP2});
  expectTensor(result.indices, DType::I32, {1, 2}, {2, 1});
  expectTensor(result.weights, DType::F64, {1, 2},
               {0.7310585786300048, 0.26894142136999516});
}

TEST(GateTest, LogitNormalizationUsesPopulationStd) {
  // z = {1, 2, 4}: mean = 7/3; population variance
  //   = ((4/3)^2 + (1/3)^2 + (5/3)^2) / 3 = 42/27, std = sqrt(42/27).
  // lambda = 2, eps = 1e-6: z~ = 2 (z - 7/3) / (sqrt(42/27) + 1e-6)
  //   = {-2.1380882..., -0.5345220..., 2.6726102...}.
  // softmax(z~) = {0.0077646..., 0.0385961..., 0.9536391...}.
  // (The sample std, /2 instead of /3, would give {0.0180, 0.0667, 0.9153}.)
  // Renormalized top-2: {0.9536391, 0.0385961} / 0.9922353
  //   = {0.9611017..., 0.0388982...}.
  GateResult result = gate(f64({1, 3}, {1, 2, 4}), /*topK=*/2, 2.0, 1e-6,
                           /*renormalize=*/true);
  expectTensor(
      result.probs, DType::F64, {1, 3},
      {0.007764692397175443, 0.038596168410323484, 0.9536391391925011});
  expectTensor(result.indices, DType::I32, {1, 2}, {2, 1});
  expectTensor(result.weights, DType::F64, {1, 2},
               {0.9611017990242967, 0.03889820097570333});
}

TEST(GateTest, LogitNormalizationIsShiftAndScaleInvariant) {
  // z = 10 {1, 2, 4} + 7 = {17, 27, 47}: mean = 91/3, population std
  //   = 10 sqrt(42/27) = 12.4721912...; lambda = 2, eps = 1e-12:
  // z~ = 2 (z - 91/3) / (12.4721912... + 1e-12), the same normalized logits
  // as for {1, 2, 4} up to eps, so softmax(z~)
  //   = {0.0077646634..., 0.0385960741..., 0.9536392623...}.
  GateResult result = gate(f64({1, 3}, {17, 27, 47}), /*topK=*/1, 2.0, 1e-12,
                           /*renormalize=*/false);
  expectTensor(
      result.probs, DType::F64, {1, 3},
      {0.0077646634508998676, 0.03859607414972874, 0.9536392623993714});
  expectTensor(result.indices, DType::I32, {1, 1}, {2});
  expectTensor(result.weights, DType::F64, {1, 1}, {0.9536392623993714});
}

TEST(GateTest, NormalizationOfConstantLogitsIsUniform) {
  // z = {5, 5, 5, 5}: std = 0, z~ = 0 / (0 + eps) = 0, probs = 1/4 each;
  // top-2 picks experts 0 and 1 (ties go to the lower index).
  GateResult result = gate(f64({1, 4}, {5, 5, 5, 5}), /*topK=*/2, 1.0, 1e-6,
                           /*renormalize=*/false);
  expectTensor(result.probs, DType::F64, {1, 4}, {0.25, 0.25, 0.25, 0.25});
  expectTensor(result.indices, DType::I32, {1, 2}, {0, 1});
  expectTensor(result.weights, DType::F64, {1, 2}, {0.25, 0.25});
}

TEST(GateTest, TiesBreakTowardsLowerExpertIndex) {
  // logits {2, 1, 2, 1}: probs {e, 1, e, 1} / (2e + 2)
  //   = {0.3655292..., 0.1344707..., 0.3655292..., 0.1344707...}.
  // Top-3 in decreasing order, ties to the lower index: {0, 2, 1}.
  // Renormalized: {e, e, 1} / (2e + 1) = {0.4223187..., 0.4223187...,
  //   0.1553624...}.
  GateResult result = gate(f64({1, 4}, {2, 1, 2, 1}), /*topK=*/3, std::nullopt,
                           1e-6, /*renormalize=*/true);
  expectTensor(result.probs, DType::F64, {1, 4},
               {0.36552928931500245, 0.13447071068499755, 0.36552928931500245,
                0.13447071068499755});
  expectTensor(result.indices, DType::I32, {1, 3}, {0, 2, 1});
  expectTensor(result.weights, DType::F64, {1, 3},
               {0.42231879825151825, 0.42231879825151825, 0.15536240349696362});
}

TEST(GateTest, TiesAmongManyExpertsKeepIndexOrder) {
  // 24 experts, logit 1 at even and 0 at odd indices: the 12 even experts
  // tie for the top; top-12 lists them in increasing index order, each with
  // weight 1/12 after renormalization.
  std::vector<double> logits(24);
  for (int e = 0; e < 24; ++e)
    logits[e] = e % 2 == 0 ? 1.0 : 0.0;
  GateResult result = gate(f64({1, 24}, logits), /*topK=*/12, std::nullopt,
                           1e-6, /*renormalize=*/true);
  expectTensor(result.indices, DType::I32, {1, 12},
               {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  expectTensor(result.weights, DType::F64, {1, 12},
               std::vector<double>(12, 1.0 / 12.0));
}

TEST(GateTest, F32TiesAreJudgedInStoredPrecision) {
  // f32 logits {0, 2^-30}: in double the probabilities are 0.5 -+ 2^-32,
  // both of which round to 0.5f, so the stored values tie and the lower
  // index wins.
  Tensor logits{DType::F32, {1, 2}, {0.0, std::ldexp(1.0, -30)}};
  GateResult result = gate(logits, /*topK=*/1, std::nullopt, 1e-6,
                           /*renormalize=*/false);
  expectTensor(result.probs, DType::F32, {1, 2}, {0.5, 0.5});
  expectTensor(result.indices, DType::I32, {1, 1}, {0});
  expectTensor(result.weights, DType::F32, {1, 1}, {0.5});
}

TEST(GateTest, RowsAreIndependent) {
  // Token 0: {1, 2, 3} as above. Token 1: {3, 2, 1} is its mirror image.
  GateResult result = gate(f64({2, 3}, {1, 2, 3, 3, 2, 1}), /*topK=*/1,
                           std::nullopt, 1e-6, /*renormalize=*/false);
  expectTensor(result.probs, DType::F64, {2, 3},
               {kP0, kP1, kP2, kP2, kP1, kP0});
  expectTensor(result.indices, DType::I32, {2, 1}, {2, 0});
  expectTensor(result.weights, DType::F64, {2, 1}, {kP2, kP2});
}

TEST(GateTest, SigmoidScoresAreWeightsAndNormalizedProbs) {
  // logits {0, ln 3, -ln 3}: sigmoid scores {1/2, 3/4, 1/4}, sum 3/2, so
  // probs {1/3, 1/2, 1/6}; top-2 {1, 0} weigh their scores, 3/5 and 2/5
  // renormalized.
  Tensor logits = f64({1, 3}, {0, std::log(3.0), -std::log(3.0)});
  for (bool renormalize : {false, true}) {
    GateResult result = gate(logits, 2, std::nullopt, 1e-6, renormalize,
                             moert::GateScoring::Sigmoid);
    expectTensor(result.probs, DType::F64, {1, 3}, {1.0 / 3, 0.5, 1.0 / 6});
    expectTensor(result.indices, DType::I32, {1, 2}, {1, 0});
    expectTensor(result.weights, DType::F64, {1, 2},
                 renormalize ? std::vector<double>{0.6, 0.4}
                             : std::vector<double>{0.75, 0.5});
  }
  // DeepSeek's routed_scaling_factor multiplies the (renormalized) weights
  // alone.
  GateResult scaled = gate(logits, 2, std::nullopt, 1e-6, true,
                           moert::GateScoring::Sigmoid, nullptr, 2.5);
  expectTensor(scaled.probs, DType::F64, {1, 3}, {1.0 / 3, 0.5, 1.0 / 6});
  expectTensor(scaled.weights, DType::F64, {1, 2}, {1.5, 1.0});
}

TEST(GateTest, BiasChoosesButDoesNotWeigh) {
  // Softmax probs {kP0, kP1, kP2}; a bias of +1 on expert 0 makes it first
  // (kP0 + 1 > kP2), yet its weight stays its probability.
  Tensor logits = f64({1, 3}, {1, 2, 3});
  Tensor bias = f64({3}, {1, 0, 0});
  GateResult result = gate(logits, 2, std::nullopt, 1e-6, false,
                           moert::GateScoring::Softmax, &bias);
  expectTensor(result.probs, DType::F64, {1, 3}, {kP0, kP1, kP2});
  expectTensor(result.indices, DType::I32, {1, 2}, {0, 2});
  expectTensor(result.weights, DType::F64, {1, 2}, {kP0, kP2});
  // On sigmoid scores {1/2, 3/4, 1/4}, -0.3 on expert 1 leaves 0.45:
  // expert 0 first, then 1.
  Tensor sigmoidLogits = f64({1, 3}, {0, std::log(3.0), -std::log(3.0)});
  Tensor sigmoidBias = f64({3}, {0, -0.3, 0});
  GateResult sigmoid = gate(sigmoidLogits, 2, std::nullopt, 1e-6, true,
                            moert::GateScoring::Sigmoid, &sigmoidBias);
  expectTensor(sigmoid.indices, DType::I32, {1, 2}, {0, 1});
  expectTensor(sigmoid.weights, DType::F64, {1, 2}, {0.4, 0.6});
}

TEST(GateTest, GroupsHoldTheChoices) {
  // Sigmoid scores of 0 are all 1/2; the bias makes the keys {0.9, 0.1,
  // 0.6, 0.6, 0.7, 0.2}. In 3 groups of 2 their two-key sums are 1.0, 1.2
  // and 0.9: with one group chosen both choices come from the second (a tie,
  // the lower index first); with two, from the first two groups; without
  // groups, experts 0 and 4.
  Tensor logits = f64({1, 6}, {0, 0, 0, 0, 0, 0});
  Tensor bias = f64({6}, {0.4, -0.4, 0.1, 0.1, 0.2, -0.3});
  auto chosen = [&](int64_t groups, int64_t groupTopK) {
    return gate(logits, 2, std::nullopt, 1e-6, true,
                moert::GateScoring::Sigmoid, &bias, 1.0, groups, groupTopK);
  };
  GateResult oneGroup = chosen(3, 1);
  expectTensor(oneGroup.indices, DType::I32, {1, 2}, {2, 3});
  expectTensor(oneGroup.weights, DType::F64, {1, 2}, {0.5, 0.5});
  expectTensor(chosen(3, 2).indices, DType::I32, {1, 2}, {0, 2});
  expectTensor(chosen(1, 1).indices, DType::I32, {1, 2}, {0, 4});
}

TEST(GateTest, UnderflowedSigmoidScoresWeighZero) {
  // Sigmoids of logits below about -745 are 0 in double, so probs and
  // renormalized weights divide 0 by 0 unless guarded: they are 0.
  Tensor logits = f64({1, 2}, {-800, -900});
  GateResult result =
      gate(logits, 1, std::nullopt, 1e-6, true, moert::GateScoring::Sigmoid);
  expectTensor(result.probs, DType::F64, {1, 2}, {0, 0});
  expectTensor(result.weights, DType::F64, {1, 1}, {0});
}

TEST(GateTest, F32BiasedKeysAreRoundedSums) {
  // Stored f32 sigmoid scores {0.5, 0.5 + 2^-24}, an ulp apart. A bias of
  // 0.75 * 2^-24 on expert 0 sums to 0.5 + 0.75 * 2^-24, below expert 1 in
  // double but rounded to 0.5 + 2^-24 in f32: a tie, which the lower index
  // wins. A bias of 2^-25 rounds to even, 0.5, and expert 1 wins.
  Tensor logits{DType::F32, {1, 2}, {0.0, std::ldexp(1.0, -22)}};
  for (auto [bias0, first] : {std::pair{0.75 * std::ldexp(1.0, -24), 0.0},
                              std::pair{std::ldexp(1.0, -25), 1.0}}) {
    Tensor bias{DType::F32, {2}, {bias0, 0.0}};
    GateResult result = gate(logits, 1, std::nullopt, 1e-6, false,
                             moert::GateScoring::Sigmoid, &bias);
    expectTensor(result.indices, DType::I32, {1, 1}, {first});
  }
}

//===----------------------------------------------------------------------===//
// gate_norm
//===----------------------------------------------------------------------===//

TEST(GateNormTest, NormalizesEachRowByPopulationStd) {
  // Row 0: z = {1, 2, 4}, mean 7/3, population std sqrt(42/27) =
  //   1.2472191...; lambda = 2, eps = 1e-6: 2 (z - 7/3) / (std + 1e-6)
  //   = {-2.1380882..., -0.5345220..., 2.6726102...} (gate's z~ above).
  // Row 1: z = {3, -1, 0}, mean 2/3, z - mean = {7/3, -5/3, -2/3},
  //   std = sqrt((49 + 25 + 4) / 27) = 1.6996731...; lambda 2:
  //   {2.7456242..., -1.9611601..., -0.7844640...}.
  expectTensor(gateNorm(f64({2, 3}, {1, 2, 4, 3, -1, 0}), 2.0, 1e-6),
               DType::F64, {2, 3},
               {-2.138088221015056, -0.5345220552537642, 2.672610276268819,
                2.745624276550912, -1.9611601975363653, -0.7844640790145461});
}

TEST(GateNormTest, ConstantRowGivesZerosAndKeepsElementType) {
  // std = 0: (z - mean) / (0 + eps) = 0 for every expert.
  Tensor logits{DType::F32, {1, 4}, {5, 5, 5, 5}};
  expectTensor(gateNorm(logits, 1.0, 1e-6), DType::F32, {1, 4}, {0, 0, 0, 0});
}

//===----------------------------------------------------------------------===//
// dispatch
//===----------------------------------------------------------------------===//

namespace {
// Three tokens of hidden 2 and their top-2 choices among 3 experts:
// token 0 -> {1, 0}, token 1 -> {0, 1}, token 2 -> {0, 2}.
Tensor dispatchTokens() { return f64({3, 2}, {1, 2, 3, 4, 5, 6}); }
Tensor dispatchIndices() { return i32({3, 2}, {1, 0, 0, 1, 0, 2}); }
} // namespace

TEST(DispatchTest, QueuesTokenMajorWithRoomToSpare) {
  // Capacity 4. Expert 0 receives tokens 0, 1, 2 (slots 0, 1, 2), expert 1
  // tokens 0, 1 (slots 0, 1), expert 2 token 2 (slot 0). Unused rows are 0.
  DispatchResult result =
      dispatch(dispatchTokens(), dispatchIndices(), /*numExperts=*/3, 4);
  expectTensor(result.buffer, DType::F64, {3, 4, 2},
               {1, 2, 3, 4, 5, 6, 0, 0,   // expert 0
                1, 2, 3, 4, 0, 0, 0, 0,   // expert 1
                5, 6, 0, 0, 0, 0, 0, 0}); // expert 2
  expectTensor(result.slots, DType::I32, {3, 2}, {0, 0, 1, 1, 2, 0});
  expectTensor(result.dropped, DType::I64, {}, {0});
}

TEST(DispatchTest, FullCapacityDropsLaterAssignments) {
  // Capacity 2, token-major over (token, choice):
  //   (0,0) e1 slot 0; (0,1) e0 slot 0; (1,0) e0 slot 1; (1,1) e1 slot 1;
  //   (2,0) e0 full -> dropped (-1); (2,1) e2 slot 0.
  // (Choice-major order would instead drop token 0's choice of expert 0.)
  DispatchResult result =
      dispatch(dispatchTokens(), dispatchIndices(), /*numExperts=*/3, 2);
  expectTensor(result.buffer, DType::F64, {3, 2, 2},
               {1, 2, 3, 4,   // expert 0: tokens 0, 1
                1, 2, 3, 4,   // expert 1: tokens 0, 1
                5, 6, 0, 0}); // expert 2: token 2, one unused row
  expectTensor(result.slots, DType::I32, {3, 2}, {0, 0, 1, 1, -1, 0});
  expectTensor(result.dropped, DType::I64, {}, {1});
}

TEST(DispatchTest, CapacityOneKeepsOnlyFirstArrivals) {
  // Capacity 1: (0,0) e1 slot 0; (0,1) e0 slot 0; (1,0) e0 dropped;
  // (1,1) e1 dropped; (2,0) e0 dropped; (2,1) e2 slot 0. Three dropped.
  DispatchResult result =
      dispatch(dispatchTokens(), dispatchIndices(), /*numExperts=*/3, 1);
  expectTensor(result.buffer, DType::F64, {3, 1, 2}, {1, 2, 1, 2, 5, 6});
  expectTensor(result.slots, DType::I32, {3, 2}, {0, 0, -1, -1, -1, 0});
  expectTensor(result.dropped, DType::I64, {}, {3});
}

TEST(DispatchTest, ZeroCapacityDropsEverything) {
  DispatchResult result =
      dispatch(dispatchTokens(), dispatchIndices(), /*numExperts=*/3, 0);
  expectTensor(result.buffer, DType::F64, {3, 0, 2}, {});
  expectTensor(result.slots, DType::I32, {3, 2}, {-1, -1, -1, -1, -1, -1});
  expectTensor(result.dropped, DType::I64, {}, {6});
}

TEST(DispatchTest, DroplessCapacityEqualToTokensNeverDrops) {
  // Every token picks both of 2 experts; capacity = T = 3 holds them all.
  Tensor tokens = dispatchTokens();
  DispatchResult result =
      dispatch(tokens, i32({3, 2}, {0, 1, 1, 0, 0, 1}), /*numExperts=*/2, 3);
  expectTensor(result.buffer, DType::F64, {2, 3, 2},
               {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  expectTensor(result.slots, DType::I32, {3, 2}, {0, 0, 1, 1, 2, 2});
  expectTensor(result.dropped, DType::I64, {}, {0});
}

TEST(DispatchTest, PriorityKeepsHighestAndBreaksTiesTowardsEarlier) {
  // Four tokens (hidden 1, values 10..13), top-2 among 3 experts, capacity
  // 2. Assignments a = 2t + c: expert 0 gets a0 (t0), a3 (t1), a4 (t2) and
  // a6 (t3), with priorities 0.1, 0.6, 0.3, 0.3: it keeps a3, then a4 over
  // a6 (a tie: the earlier wins), and drops a0 (which arrival order would
  // have kept) and a6. The kept a3, a4 take slots 0, 1 in token-major order.
  // Experts 1 (a1, a5) and 2 (a2, a7) are within capacity.
  Tensor tokens = f64({4, 1}, {10, 11, 12, 13});
  Tensor indices = i32({4, 2}, {0, 1, 2, 0, 0, 1, 0, 2});
  Tensor priority = f64({4, 2}, {0.1, 0.2, 0.5, 0.6, 0.3, 0.1, 0.3, 0.4});
  DispatchResult result = dispatch(tokens, indices, 3, 2, &priority);
  expectTensor(result.slots, DType::I32, {4, 2}, {-1, 0, 0, 0, 1, 1, -1, 1});
  expectTensor(result.buffer, DType::F64, {3, 2, 1},
               {11, 12,   // expert 0: tokens 1, 2
                10, 12,   // expert 1: tokens 0, 2
                11, 13}); // expert 2: tokens 1, 3
  expectTensor(result.dropped, DType::I64, {}, {2});
  // By arrival, expert 0 keeps a0 and a3 instead.
  expectTensor(dispatch(tokens, indices, 3, 2).slots, DType::I32, {4, 2},
               {0, 0, 0, 1, -1, 1, -1, 1});
}

TEST(DispatchTest, PriorityWithinCapacityKeepsArrivalOrder) {
  // Capacity 3 holds expert 0's three assignments: the slots follow arrival
  // whatever the priorities, as without them.
  Tensor priority = f64({3, 2}, {0.1, 0.9, 0.8, 0.2, 0.5, 0.5});
  DispatchResult result =
      dispatch(dispatchTokens(), dispatchIndices(), 3, 3, &priority);
  expectTensor(result.slots, DType::I32, {3, 2}, {0, 0, 1, 1, 2, 0});
  expectTensor(result.dropped, DType::I64, {}, {0});
}

TEST(DispatchTest, OutOfRangeExpertThrows) {
  std::string message = errorOf([] {
    dispatch(dispatchTokens(), i32({3, 2}, {0, 1, 1, 3, 0, 1}), 3, 3);
  });
  EXPECT_NE(message.find("expert index 3"), std::string::npos) << message;
}

//===----------------------------------------------------------------------===//
// expert_ffn
//===----------------------------------------------------------------------===//

TEST(ExpertFfnTest, OneExpertByHand) {
  // x = {1, 2}; gate_proj rows {1, 0}, {0, -1} -> g = {1, -2};
  // up_proj rows {1, 1}, {2, 0} -> u = {3, 2};
  // a = silu(g) * u = {3/(1 + e^-1), -4/(1 + e^2)}
  //   = {2.1931757..., -0.4768116...};
  // down_proj rows {1, 0.5}, {-1, 2}:
  //   y = {a0 + 0.5 a1, -a0 + 2 a1} = {1.9547698..., -3.1467991...}.
  // The second capacity row is zero and silu(0) = 0, so its output is zero.
  Tensor input = f64({1, 2, 2}, {1, 2, 0, 0});
  Tensor gateProj = f64({1, 2, 2}, {1, 0, 0, -1});
  Tensor upProj = f64({1, 2, 2}, {1, 1, 2, 0});
  Tensor downProj = f64({1, 2, 2}, {1, 0.5, -1, 2});
  expectTensor(expertFfn(input, gateProj, upProj, downProj), DType::F64,
               {1, 2, 2}, {1.9547698918457797, -3.1467991120669554, 0, 0});
}

TEST(ExpertFfnTest, EachExpertUsesItsOwnWeights) {
  // hidden 1, ffn 1. Expert 0: x = 1, w1 = 1, w3 = 2, w2 = 3
  //   -> silu(1) * 2 * 3 = 6/(1 + e^-1) = 4.3863514...
  // Expert 1: x = 2, w1 = -1, w3 = 0.5, w2 = 4
  //   -> silu(-2) * 1 * 4 = -8/(1 + e^2) = -0.9536233...
  Tensor input = f64({2, 1, 1}, {1, 2});
  expectTensor(expertFfn(input, f64({2, 1, 1}, {1, -1}),
                         f64({2, 1, 1}, {2, 0.5}), f64({2, 1, 1}, {3, 4})),
               DType::F64, {2, 1, 1}, {4.38635147178003, -0.9536233761769404});
}

TEST(ExpertFfnTest, RectangularProjectionsUseHuggingFaceLayouts) {
  // hidden 1, ffn 2: gate_proj [1, 2, 1] = {1, 1}, up_proj = {1, 2},
  // down_proj [1, 1, 2] = {1, 1}. x = 1: a = silu(1) * {1, 2};
  // y = 3 silu(1) = 3/(1 + e^-1) = 2.1931757...
  Tensor input = f64({1, 1, 1}, {1});
  expectTensor(expertFfn(input, f64({1, 2, 1}, {1, 1}), f64({1, 2, 1}, {1, 2}),
                         f64({1, 1, 2}, {1, 1})),
               DType::F64, {1, 1, 1}, {2.193175735890015});
}

TEST(ExpertFfnTest, ProjectionsKeepGateThenUpRowsPerExpert) {
  // Two experts, capacity 2, hidden 2, ffn 1. Expert 0 has rows x = {1, 2}
  // and {0, 0}: gate {3, 4} -> 11 and 0, up {1, -1} -> -1 and 0. Expert 1
  // has rows {1, 0} and {0, 1}: gate {2, 5} -> 2 and 5, up {-3, 1} -> -3
  // and 1. Layout [experts, 2, capacity, ffn].
  Tensor input = f64({2, 2, 2}, {1, 2, 0, 0, 1, 0, 0, 1});
  expectTensor(expertProjections(input, f64({2, 1, 2}, {3, 4, 2, 5}),
                                 f64({2, 1, 2}, {1, -1, -3, 1})),
               DType::F64, {2, 2, 2, 1}, {11, 0, -1, 0, 2, 5, -3, 1});
}

//===----------------------------------------------------------------------===//
// combine
//===----------------------------------------------------------------------===//

TEST(CombineTest, WeightedSumSkipsDroppedSlots) {
  // Expert 0 rows {1, 2}, {3, 4}; expert 1 rows {5, 6}, {7, 8}.
  // Token 0: 0.25 e0[0] + 0.75 e1[1] = {0.25 + 5.25, 0.5 + 6} = {5.5, 6.5}.
  // Token 1: 0.5 e1[0] + (dropped) = {2.5, 3}.
  Tensor output = f64({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor weights = f64({2, 2}, {0.25, 0.75, 0.5, 0.5});
  Tensor indices = i32({2, 2}, {0, 1, 1, 0});
  Tensor slots = i32({2, 2}, {0, 1, 0, -1});
  expectTensor(combine(output, weights, indices, slots), DType::F64, {2, 2},
               {5.5, 6.5, 2.5, 3});
}

TEST(CombineTest, AllDroppedGivesZero) {
  Tensor output = f64({1, 1, 2}, {9, 9});
  expectTensor(combine(output, f64({1, 2}, {0.5, 0.5}), i32({1, 2}, {0, 0}),
                       i32({1, 2}, {-1, -1})),
               DType::F64, {1, 2}, {0, 0});
}

TEST(CombineTest, UndoesDispatchThroughIdentityExperts) {
  // Dispatch then combine with weights summing to 1 per token returns the
  // tokens where nothing was dropped; the dropped choice of token 2 (see
  // FullCapacityDropsLaterAssignments) leaves only 0.5 of it.
  Tensor tokens = dispatchTokens();
  Tensor indices = dispatchIndices();
  DispatchResult routed = dispatch(tokens, indices, 3, 2);
  Tensor weights = f64({3, 2}, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  expectTensor(combine(routed.buffer, weights, indices, routed.slots),
               DType::F64, {3, 2}, {1, 2, 3, 4, 2.5, 3});
}

//===----------------------------------------------------------------------===//
// aux_loss, z_loss
//===----------------------------------------------------------------------===//

namespace {
// probs rows {0.5, 0.3, 0.2} and {0.1, 0.6, 0.3}: P = {0.3, 0.45, 0.25}.
Tensor auxProbs() { return f64({2, 3}, {0.5, 0.3, 0.2, 0.1, 0.6, 0.3}); }
} // namespace

TEST(AuxLossTest, SkyworkIsSquaredGapToUniform) {
  // sum_j (1/3 - P_j)^2 = (1/30)^2 + (7/60)^2 + (1/12)^2
  //   = (4 + 49 + 25) / 3600 = 78/3600 = 0.0216666...
  Tensor result =
      auxLoss(AuxLossKind::Skywork, auxProbs(), i32({2, 2}, {0, 1, 1, 2}));
  expectTensor(result, DType::F64, {}, {78.0 / 3600.0});
}

TEST(AuxLossTest, SkyworkIgnoresChoices) {
  Tensor result =
      auxLoss(AuxLossKind::Skywork, auxProbs(), i32({2, 2}, {2, 2, 2, 2}));
  expectTensor(result, DType::F64, {}, {78.0 / 3600.0});
}

TEST(AuxLossTest, SkyworkIsZeroForUniformProbs) {
  Tensor probs = f64({2, 2}, {0.5, 0.5, 0.5, 0.5});
  expectTensor(auxLoss(AuxLossKind::Skywork, probs, i32({2, 1}, {0, 0})),
               DType::F64, {}, {0});
}

TEST(AuxLossTest, SwitchIsExpertsTimesFractionDotMeanProb) {
  // Choices {0, 1}, {1, 2}: f = {1/4, 2/4, 1/4} over T * k = 4 assignments.
  // 3 * (0.25 * 0.3 + 0.5 * 0.45 + 0.25 * 0.25) = 3 * 0.3625 = 1.0875.
  Tensor result =
      auxLoss(AuxLossKind::Switch, auxProbs(), i32({2, 2}, {0, 1, 1, 2}));
  expectTensor(result, DType::F64, {}, {1.0875});
}

TEST(AuxLossTest, SwitchIsOneWhenBalanced) {
  // n = 2, f = {1/2, 1/2}, P = {1/2, 1/2}: 2 * (1/4 + 1/4) = 1.
  Tensor probs = f64({2, 2}, {0.5, 0.5, 0.5, 0.5});
  expectTensor(auxLoss(AuxLossKind::Switch, probs, i32({2, 1}, {0, 1})),
               DType::F64, {}, {1});
}

TEST(AuxLossTest, OutOfRangeChoiceThrows) {
  std::string message = errorOf([] {
    auxLoss(AuxLossKind::Switch, auxProbs(), i32({2, 1}, {0, 3}));
  });
  EXPECT_NE(message.find("expert index 3"), std::string::npos) << message;
}

TEST(ZLossTest, MeanOfSquaredLogSumExp) {
  // Row {0, 0}: log 2 = 0.6931471...; row {1, 2}: 2 + log(1 + e^-1)
  //   = 2.3132616...; mean of squares = (0.480453 + 5.351180) / 2
  //   = 2.9158163...
  expectTensor(zLoss(f64({2, 2}, {0, 0, 1, 2})), DType::F64, {},
               {2.915816324428929});
}

//===----------------------------------------------------------------------===//
// expert_load, expert_bias_update
//===----------------------------------------------------------------------===//

TEST(ExpertBiasTest, LoadCountsEveryChoice) {
  expectTensor(expertLoad(i32({3, 2}, {0, 2, 2, 3, 0, 2}), 4), DType::I64, {4},
               {2, 0, 3, 1});
  EXPECT_THROW(expertLoad(i32({1, 2}, {0, 4}), 4), moert::Error);
}

TEST(ExpertBiasTest, UpdateMovesAgainstTheLoad) {
  // Loads {2, 0, 3, 1}, mean 1.5: -, +, -, + rate; a load at the mean
  // keeps its bias ({1, 1} below).
  expectTensor(expertBiasUpdate(f64({4}, {0, 0.5, -0.25, 0}),
                                Tensor{DType::I64, {4}, {2, 0, 3, 1}}, 0.125),
               DType::F64, {4}, {-0.125, 0.625, -0.375, 0.125});
  expectTensor(expertBiasUpdate(Tensor{DType::F32, {2}, {0.25, 0}},
                                Tensor{DType::I64, {2}, {1, 1}}, 0.5),
               DType::F32, {2}, {0.25, 0});
}

//===----------------------------------------------------------------------===//
// adaptive_aux_coeff
//===----------------------------------------------------------------------===//

TEST(AdaptiveAuxCoeffTest, MovesTowardsScaledDropRate) {
  // d = 10/1000 = 0.01; alpha_hat = min(0.2 * 0.01, 0.01) = 0.002;
  // alpha' = 0.99 * 0.005 + 0.01 * 0.002 = 0.00497.
  Tensor result = adaptiveAuxCoeff(
      f64({}, {0.005}), Tensor::scalar(DType::I64, 10), 0.2, 0.01, 0.99, 1000);
  expectTensor(result, DType::F64, {}, {0.00497});
  EXPECT_NEAR(result.data[0], 0.00497, 1e-12 * 0.00497);
}

TEST(AdaptiveAuxCoeffTest, ClampsAtAlphaMax) {
  // d = 500/1000 = 0.5; xi * d = 0.1 > alpha_max, so alpha_hat = 0.01;
  // alpha' = 0.99 * 0.005 + 0.01 * 0.01 = 0.00505 (unclamped: 0.00595).
  Tensor result = adaptiveAuxCoeff(
      f64({}, {0.005}), Tensor::scalar(DType::I64, 500), 0.2, 0.01, 0.99, 1000);
  expectTensor(result, DType::F64, {}, {0.00505});
  EXPECT_NEAR(result.data[0], 0.00505, 1e-12 * 0.00505);
}

TEST(AdaptiveAuxCoeffTest, NoDropsDecaysAlpha) {
  // alpha_hat = 0: alpha' = 0.99 * 0.005 = 0.00495.
  Tensor result = adaptiveAuxCoeff(
      f64({}, {0.005}), Tensor::scalar(DType::I64, 0), 0.2, 0.01, 0.99, 1000);
  expectTensor(result, DType::F64, {}, {0.00495});
  EXPECT_NEAR(result.data[0], 0.00495, 1e-12 * 0.00495);
}

TEST(AdaptiveAuxCoeffTest, KeepsAlphaElementType) {
  // beta = 0.5: 0.5 * 0.25 + 0.5 * min(1 * 0.25, 1) = 0.25.
  Tensor result =
      adaptiveAuxCoeff(Tensor::scalar(DType::F32, 0.25),
                       Tensor::scalar(DType::I64, 1), 1.0, 1.0, 0.5, 4);
  expectTensor(result, DType::F32, {}, {0.25});
}

//===----------------------------------------------------------------------===//
// routing_metrics
//===----------------------------------------------------------------------===//

TEST(RoutingMetricsTest, ThreeTokensWithADroppedAssignment) {
  // probs: t0 {0.5, 0.25, 0.125, 0.125}: p1/p2 = 2, p2/p3 = 2;
  //        t1 {0.1, 0.2, 0.3, 0.4}:      4/3, 3/2;
  //        t2 uniform 0.25:              1, 1 (ties count).
  // max1_max2 = (2 + 4/3 + 1) / 3 = 13/9; max2_max3 = (2 + 1.5 + 1) / 3 = 1.5.
  // Choices t0 {0, 1}, t1 {3, 2}, t2 {0, 1} with t2's choice of expert 1
  // dropped: drop_rate = 1/6, load = {2, 1, 1, 1}.
  Tensor probs = f64({3, 4}, {0.5, 0.25, 0.125, 0.125, 0.1, 0.2, 0.3, 0.4, 0.25,
                              0.25, 0.25, 0.25});
  RoutingMetrics result =
      routingMetrics(probs, i32({3, 2}, {0, 1, 3, 2, 0, 1}),
                     i32({3, 2}, {0, 0, 0, 0, 1, -1}), DType::F64);
  expectTensor(result.dropRate, DType::F64, {}, {1.0 / 6.0});
  expectTensor(result.max1Max2, DType::F64, {}, {1.4444444444444444});
  expectTensor(result.max2Max3, DType::F64, {}, {1.5});
  expectTensor(result.load, DType::I64, {4}, {2, 1, 1, 1});
}

TEST(RoutingMetricsTest, ZeroRunnersUpDivideBySmallestNormalFloat) {
  // {1, 0, 0}: p1 / FLT_MIN = 1 / 2^-126 = 8.5070591...e37, p2 / FLT_MIN = 0.
  // The metrics take the requested type; nothing is dropped.
  RoutingMetrics result = routingMetrics(
      f64({1, 3}, {1, 0, 0}), i32({1, 1}, {0}), i32({1, 1}, {0}), DType::F32);
  expectTensor(result.dropRate, DType::F32, {}, {0});
  expectTensor(result.max1Max2, DType::F32, {}, {std::ldexp(1.0, 126)});
  expectTensor(result.max2Max3, DType::F32, {}, {0});
  expectTensor(result.load, DType::I64, {3}, {1, 0, 0});
}

TEST(RoutingMetricsTest, OnlyKeptAssignmentsAreChecked) {
  Tensor probs = f64({1, 3}, {0.5, 0.3, 0.2});
  EXPECT_EQ(errorOf([&] {
              routingMetrics(probs, i32({1, 2}, {0, 7}), i32({1, 2}, {0, -1}),
                             DType::F64);
            }),
            "");
  EXPECT_EQ(errorOf([&] {
              routingMetrics(probs, i32({1, 2}, {0, 7}), i32({1, 2}, {0, 0}),
                             DType::F64);
            }),
            "moe.routing_metrics: expert index 7 is outside [0, 3)");
}

//===----------------------------------------------------------------------===//
// expert_similarity
//===----------------------------------------------------------------------===//

TEST(ExpertSimilarityTest, MeanPairwiseCosineWithAZeroExpert) {
  // ffn 1, hidden 2: theta_e = gate[e] (2) ++ up[e] (2) ++ down[e] (2).
  //   theta_0 = (1, 0, 0, 0, 0, 0)
  //   theta_1 = (1, 0, 0, 0, 0, 1)  cos(0, 1) = 1 / sqrt(2)
  //   theta_2 = 0                   similarity 0 with everyone
  //   theta_3 = (0, 0, 3, 0, 0, 4)  cos(0, 3) = 0, cos(1, 3) = 4 / (5 sqrt 2)
  // Mean over the 6 pairs: (1 + 4/5) / sqrt(2) / 6 = 3 / (10 sqrt 2)
  //   = 0.2121320...
  Tensor gate = f64({4, 1, 2}, {1, 0, 1, 0, 0, 0, 0, 0});
  Tensor up = f64({4, 1, 2}, {0, 0, 0, 0, 0, 0, 3, 0});
  Tensor down = f64({4, 2, 1}, {0, 0, 0, 1, 0, 0, 0, 4});
  expectTensor(expertSimilarity(gate, up, down, DType::F64), DType::F64, {},
               {0.21213203435596426});
}

TEST(ExpertSimilarityTest, IdenticalAndOppositeExperts) {
  // Two copies: 1. A vector and its negative: -1 (in the result's type).
  Tensor w = f64({2, 1, 1}, {2, 2}), v = f64({2, 1, 1}, {-3, -3});
  expectTensor(expertSimilarity(w, w, v, DType::F64), DType::F64, {}, {1});
  Tensor opposite = f64({2, 1, 1}, {2, -2});
  expectTensor(expertSimilarity(opposite, opposite, opposite, DType::F32),
               DType::F32, {}, {-1});
}
