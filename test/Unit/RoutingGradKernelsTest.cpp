//===- RoutingGradKernelsTest.cpp - routing and expert VJPs ---------------===//
//
// The VJPs of the routing, expert and auxiliary-loss ops in GradKernels.h
// against central finite differences of their forward kernels
// (FiniteDifferences.h), each on a small case worked out by hand (literals
// evaluated with python3's math module, never with the code under test),
// and a whole MoE layer's chained VJPs.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"

#include "FiniteDifferences.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace mlir::moe::ref;
using namespace moe::test;
using namespace moe::test::gradients;

//===----------------------------------------------------------------------===//
// gate
//===----------------------------------------------------------------------===//

namespace {

/// Whether every row's sorted probabilities are at least 1e-3 apart, so
/// that a step of kStep cannot change the top-k choice or its order.
bool untied(const Tensor &probs) {
  int64_t tokens = probs.dim(0), experts = probs.dim(1);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> row(&probs.data[t * experts],
                            &probs.data[(t + 1) * experts]);
    std::sort(row.begin(), row.end());
    for (int64_t e = 1; e < experts; ++e)
      if (row[e] - row[e - 1] <= 1e-3)
        return false;
  }
  return true;
}

/// Random [tokens, experts] logits whose gate probabilities are untied.
Tensor untiedLogits(Random &random, int64_t tokens, int64_t experts,
                    std::optional<double> lambda, double eps) {
  for (;;) {
    Tensor logits = random.tensor({tokens, experts}, -2, 2);
    if (untied(gate(logits, 1, lambda, eps, false).probs))
      return logits;
  }
}

} // namespace

TEST(GateGradTest, HandWorkedRenormalizedWeight) {
  // logits {1, 2, 3}, top-2 renormalized: w_0 = p_2 / (p_1 + p_2)
  //   = sigmoid(z_2 - z_1), so dw_0/dz = sigmoid' (1) {0, -1, 1} with
  //   sigmoid'(1) = e / (1 + e)^2 = 0.19661193324148185.
  Tensor logits = f64({1, 3}, {1, 2, 3});
  GateResult forward = gate(logits, 2, std::nullopt, 1e-6, true);
  expectTensor(gateGrad(logits, forward.indices, std::nullopt, 1e-6, true,
                        f64({1, 3}, {0, 0, 0}), f64({1, 2}, {1, 0})),
               DType::F64, {1, 3},
               {0, -0.19661193324148185, 0.19661193324148185});
}

TEST(GateGradTest, HandWorkedSigmoidScores) {
  // logits {0, ln 3}: s = {1/2, 3/4}, total 5/4, probs {2/5, 3/5}; top-1
  // picks expert 1 with weight 3/4. d probs {1, 0}: ds = (dp - 2/5) / (5/4)
  // = {12/25, -8/25}; d weight 1 adds 1 to ds_1: 17/25. Through the
  // sigmoids (s (1 - s) = {1/4, 3/16}): dz = {3/25, 51/400}.
  Tensor logits = f64({1, 2}, {0, std::log(3.0)});
  GateResult forward =
      gate(logits, 1, std::nullopt, 1e-6, false, moert::GateScoring::Sigmoid);
  expectTensor(gateGrad(logits, forward.indices, std::nullopt, 1e-6, false,
                        f64({1, 2}, {1, 0}), f64({1, 1}, {1}),
                        moert::GateScoring::Sigmoid),
               DType::F64, {1, 2}, {3.0 / 25, 51.0 / 400});
}

TEST(GateGradTest, UnderflowedSigmoidScoresHaveZeroGradient) {
  // Scores of 0 in double (logits below about -745) have sigmoid' 0; the
  // guarded sums keep 0 / 0 out.
  Tensor logits = f64({1, 2}, {-800, -900});
  GateResult forward =
      gate(logits, 1, std::nullopt, 1e-6, true, moert::GateScoring::Sigmoid);
  expectTensor(gateGrad(logits, forward.indices, std::nullopt, 1e-6, true,
                        f64({1, 2}, {1, 1}), f64({1, 1}, {1}),
                        moert::GateScoring::Sigmoid),
               DType::F64, {1, 2}, {0, 0});
}

TEST(GateGradTest, MatchesFiniteDifferences) {
  const std::optional<double> lambdas[] = {std::nullopt, 1.0, 2.0};
  for (uint64_t seed : kSeeds)
    for (std::optional<double> lambda : lambdas)
      for (bool renormalize : {false, true})
        for (auto scoring :
             {moert::GateScoring::Softmax, moert::GateScoring::Sigmoid}) {
          bool sigmoid = scoring == moert::GateScoring::Sigmoid;
          Random random(seed * 1000 +
                        static_cast<uint64_t>(lambda ? *lambda : 0) * 100 +
                        renormalize * 10 + sigmoid);
          int64_t tokens = random.integer(2, 5), experts = random.integer(3, 6);
          int64_t topK = random.integer(1, 3);
          double eps = seed % 2 ? 1e-6 : 0.3; // a large eps exercises its term
          Tensor logits = untiedLogits(random, tokens, experts, lambda, eps);
          // With sigmoid scores a bias chooses other experts than the
          // largest scores, and the weights are scaled (DeepSeek-V3's);
          // the gradient follows the choices.
          Tensor bias = random.tensor({experts}, -0.3, 0.3);
          const Tensor *chooser = sigmoid ? &bias : nullptr;
          double scale = sigmoid ? 2.5 : 1.0;
          GateResult forward = gate(logits, topK, lambda, eps, renormalize,
                                    scoring, chooser, scale);
          Tensor rProbs = random.tensor({tokens, experts});
          Tensor rWeights = random.tensor({tokens, topK});
          std::string what = "seed " + std::to_string(seed) + " lambda " +
                             (lambda ? std::to_string(*lambda) : "none") +
                             (renormalize ? " renormalize" : "") +
                             (sigmoid ? " sigmoid" : "");
          expectGradient(
              what,
              gateGrad(logits, forward.indices, lambda, eps, renormalize,
                       rProbs, rWeights, scoring, scale),
              logits,
              [&](const Tensor &x) {
                GateResult result = gate(x, topK, lambda, eps, renormalize,
                                         scoring, chooser, scale);
                EXPECT_EQ(result.indices.data, forward.indices.data);
                return dot(rProbs, result.probs) +
                       dot(rWeights, result.weights);
              },
              random);
        }
}

TEST(GateGradTest, ConstantRowIsFiniteAndMatches) {
  // std = 0: along d, z~(h) = lambda h (d - mean d) / (|h| std(d) + eps) is
  // odd in h with slope lambda / eps (I - 1/n) d at 0: differentiable, the
  // std term contributing nothing. Its |h| makes the central difference's
  // error O(h std(d) / eps), not O(h^2), hence eps = 1 and a smaller step.
  // Only the probs are checked: the top-k of a tied row is not stable.
  Random random(7);
  Tensor logits = f64({2, 4}, {0.5, 0.5, 0.5, 0.5, -1, -1, -1, -1});
  Tensor indices = gate(logits, 2, 1.5, 1.0, true).indices;
  Tensor rProbs = random.tensor({2, 4});
  Tensor grad = gateGrad(logits, indices, 1.5, 1.0, true, rProbs,
                         Tensor::zeros(DType::F64, {2, 2}));
  for (double value : grad.data)
    EXPECT_TRUE(std::isfinite(value));
  expectGradient(
      "constant rows", grad, logits,
      [&](const Tensor &x) {
        return dot(rProbs, gate(x, 2, 1.5, 1.0, true).probs);
      },
      random, /*step=*/1e-8);
}

//===----------------------------------------------------------------------===//
// dispatch
//===----------------------------------------------------------------------===//

TEST(DispatchGradTest, HandWorkedSkipsDroppedAssignments) {
  // 3 experts of capacity 1, indices {0, 1 | 0, 2 | 1, 0}: expert 0 keeps
  // t0 and drops t1c0 and t2c1; expert 1 keeps t0 and drops t2c0; expert 2
  // keeps t1. Slots {0, 0 | -1, 0 | -1, -1}. dBuffer rows e0 {1, 2},
  // e1 {10, 20}, e2 {100, 200}: t0 = e0 + e1, t1 = e2, t2 (all dropped) = 0.
  Tensor indices = i32({3, 2}, {0, 1, 0, 2, 1, 0});
  DispatchResult forward =
      dispatch(Tensor::zeros(DType::F64, {3, 2}), indices, 3, 1);
  expectTensor(forward.slots, DType::I32, {3, 2}, {0, 0, -1, 0, -1, -1});
  expectTensor(dispatchGrad(f64({3, 1, 2}, {1, 2, 10, 20, 100, 200}), indices,
                            forward.slots),
               DType::F64, {3, 2}, {11, 22, 100, 200, 0, 0});
}

TEST(DispatchGradTest, MatchesFiniteDifferencesWithDrops) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t tokens = random.integer(3, 5), experts = random.integer(3, 5);
    int64_t topK = random.integer(2, 3), hidden = random.integer(2, 6);
    // Less room than demand (every expert full would still drop some),
    // except the last seed, which is dropless.
    int64_t capacity =
        seed == 5 ? tokens
                  : std::max<int64_t>(1, (tokens * topK - 1) / experts);
    Tensor indices = random.choices(tokens, topK, experts);
    Tensor input = random.tensor({tokens, hidden});
    DispatchResult forward = dispatch(input, indices, experts, capacity);
    if (seed != 5) {
      EXPECT_GT(forward.dropped.data[0], 0);
    }
    Tensor r = random.tensor(forward.buffer.shape);
    Tensor grad = dispatchGrad(r, indices, forward.slots);
    expectGradient(
        "seed " + std::to_string(seed), grad, input,
        [&](const Tensor &x) {
          return dot(r, dispatch(x, indices, experts, capacity).buffer);
        },
        random);
    // A token whose every assignment was dropped gets no gradient at all.
    for (int64_t t = 0; t < tokens; ++t) {
      bool allDropped = true;
      for (int64_t c = 0; c < topK; ++c)
        allDropped = allDropped && forward.slots.data[t * topK + c] < 0;
      for (int64_t d = 0; allDropped && d < hidden; ++d)
        EXPECT_EQ(grad.data[t * hidden + d], 0.0);
    }
  }
}

//===----------------------------------------------------------------------===//
// expert_ffn
//===----------------------------------------------------------------------===//

TEST(ExpertFfnGradTest, HandWorked) {
  // One expert, one row, hidden = ffn = 1: x = 2, wg = 1, wu = 3, wd = 0.5,
  // dy = 1. g = 2, u = 6, a = silu(2) u = 10.5695...; dWd = a;
  // da = wd = 0.5; dg = da u silu'(2), du = da silu(2);
  // dWg = dg x, dWu = du x, dx = dg wg + du wu.
  ExpertFfnGrads grads = expertFfnGrad(
      f64({1, 1, 1}, {2}), f64({1, 1, 1}, {1}), f64({1, 1, 1}, {3}),
      f64({1, 1, 1}, {0.5}), f64({1, 1, 1}, {1}));
  expectTensor(grads.dDownProj, DType::F64, {1, 1, 1}, {10.569564935734588});
  expectTensor(grads.dGateProj, DType::F64, {1, 1, 1}, {6.544705492709373});
  expectTensor(grads.dUpProj, DType::F64, {1, 1, 1}, {1.7615941559557646});
  expectTensor(grads.dInput, DType::F64, {1, 1, 1}, {5.914743980288334});
}

TEST(ExpertFfnGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t experts = random.integer(1, 3), capacity = random.integer(1, 3);
    int64_t hidden = random.integer(2, 4), ffn = random.integer(2, 5);
    Tensor input = random.tensor({experts, capacity, hidden}, -2, 2);
    Tensor gateProj = random.tensor({experts, ffn, hidden});
    Tensor upProj = random.tensor({experts, ffn, hidden});
    Tensor downProj = random.tensor({experts, hidden, ffn});
    Tensor r = random.tensor(input.shape);
    ExpertFfnGrads grads = expertFfnGrad(input, gateProj, upProj, downProj, r);
    std::string what = "seed " + std::to_string(seed);
    expectGradient(
        what + " input", grads.dInput, input,
        [&](const Tensor &x) {
          return dot(r, expertFfn(x, gateProj, upProj, downProj));
        },
        random);
    expectGradient(
        what + " gate_proj", grads.dGateProj, gateProj,
        [&](const Tensor &x) {
          return dot(r, expertFfn(input, x, upProj, downProj));
        },
        random);
    expectGradient(
        what + " up_proj", grads.dUpProj, upProj,
        [&](const Tensor &x) {
          return dot(r, expertFfn(input, gateProj, x, downProj));
        },
        random);
    expectGradient(
        what + " down_proj", grads.dDownProj, downProj,
        [&](const Tensor &x) {
          return dot(r, expertFfn(input, gateProj, upProj, x));
        },
        random);
  }
}

//===----------------------------------------------------------------------===//
// combine
//===----------------------------------------------------------------------===//

TEST(CombineGradTest, HandWorkedWithDroppedAssignment) {
  // 3 experts of capacity 1, outputs e0 {1, 2}, e1 {3, 4}, e2 {5, 6};
  // indices {0, 1 | 2, 0}, slots {0, 0 | 0, -1} (t1c1 dropped), weights
  // {0.25, 0.75 | 0.6, 0.4}, dy {1, 1 | 2, -1}.
  // dOut e0 = 0.25 {1, 1}, e1 = 0.75 {1, 1}, e2 = 0.6 {2, -1};
  // dw = {{1, 1}.{1, 2}, {1, 1}.{3, 4} | {2, -1}.{5, 6}, 0} = {3, 7 | 4, 0}.
  CombineGrads grads = combineGrad(
      f64({3, 1, 2}, {1, 2, 3, 4, 5, 6}), f64({2, 2}, {0.25, 0.75, 0.6, 0.4}),
      i32({2, 2}, {0, 1, 2, 0}), i32({2, 2}, {0, 0, 0, -1}),
      f64({2, 2}, {1, 1, 2, -1}));
  expectTensor(grads.dExpertOutput, DType::F64, {3, 1, 2},
               {0.25, 0.25, 0.75, 0.75, 1.2, -0.6});
  expectTensor(grads.dWeights, DType::F64, {2, 2}, {3, 7, 4, 0});
}

TEST(CombineGradTest, MatchesFiniteDifferencesWithDrops) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t tokens = random.integer(3, 5), experts = random.integer(3, 5);
    int64_t topK = random.integer(2, 3), hidden = random.integer(2, 6);
    int64_t capacity = std::max<int64_t>(1, (tokens * topK - 1) / experts);
    Tensor indices = random.choices(tokens, topK, experts);
    DispatchResult routed = dispatch(Tensor::zeros(DType::F64, {tokens, 1}),
                                     indices, experts, capacity);
    EXPECT_GT(routed.dropped.data[0], 0);
    Tensor expertOutput = random.tensor({experts, capacity, hidden});
    Tensor weights = random.tensor({tokens, topK}, 0, 1);
    Tensor r = random.tensor({tokens, hidden});
    CombineGrads grads =
        combineGrad(expertOutput, weights, indices, routed.slots, r);
    std::string what = "seed " + std::to_string(seed);
    expectGradient(
        what + " expert_output", grads.dExpertOutput, expertOutput,
        [&](const Tensor &x) {
          return dot(r, combine(x, weights, indices, routed.slots));
        },
        random);
    expectGradient(
        what + " weights", grads.dWeights, weights,
        [&](const Tensor &w) {
          return dot(r, combine(expertOutput, w, indices, routed.slots));
        },
        random);
    for (int64_t i = 0; i < tokens * topK; ++i)
      if (routed.slots.data[i] < 0) {
        EXPECT_EQ(grads.dWeights.data[i], 0.0) << "dropped assignment " << i;
      }
  }
}

//===----------------------------------------------------------------------===//
// aux_loss and z_loss
//===----------------------------------------------------------------------===//

TEST(AuxLossGradTest, SkyworkHandWorked) {
  // probs {0.7, 0.3 | 0.5, 0.5}: P = {0.6, 0.4};
  // dL/dp_tj = -2 (1/2 - P_j) / T = {0.1, -0.1} for each token.
  expectTensor(auxLossGrad(AuxLossKind::Skywork,
                           f64({2, 2}, {0.7, 0.3, 0.5, 0.5}),
                           i32({2, 1}, {0, 0}), Tensor::scalar(DType::F64, 1)),
               DType::F64, {2, 2}, {0.1, -0.1, 0.1, -0.1});
}

TEST(AuxLossGradTest, SwitchHandWorkedTreatsFractionsAsConstants) {
  // indices {0 | 0}: f = {1, 0}; dL/dp_tj = dLoss n f_j / T = 3 {1, 0}.
  expectTensor(auxLossGrad(AuxLossKind::Switch,
                           f64({2, 2}, {0.7, 0.3, 0.5, 0.5}),
                           i32({2, 1}, {0, 0}), Tensor::scalar(DType::F64, 3)),
               DType::F64, {2, 2}, {3, 0, 3, 0});
}

TEST(AuxLossGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds)
    for (AuxLossKind kind : {AuxLossKind::Skywork, AuxLossKind::Switch}) {
      Random random(seed);
      int64_t tokens = random.integer(2, 5), experts = random.integer(2, 6);
      int64_t topK = random.integer(1, std::min<int64_t>(3, experts));
      Tensor probs = gate(random.tensor({tokens, experts}, -2, 2), 1,
                          std::nullopt, 0, false)
                         .probs;
      Tensor indices = random.choices(tokens, topK, experts);
      double dLoss = random.uniform(0.5, 2);
      expectGradient(
          "seed " + std::to_string(seed) +
              (kind == AuxLossKind::Skywork ? " skywork" : " switch"),
          auxLossGrad(kind, probs, indices, Tensor::scalar(DType::F64, dLoss)),
          probs,
          [&](const Tensor &p) {
            return dLoss * auxLoss(kind, p, indices).data[0];
          },
          random);
    }
}

TEST(ZLossGradTest, HandWorked) {
  // Zero logits [1, 2]: lse = log 2, d/dz_j lse^2 = 2 log 2 * 1/2 = log 2.
  expectTensor(zLossGrad(f64({1, 2}, {0, 0}), Tensor::scalar(DType::F64, 1)),
               DType::F64, {1, 2}, {0.6931471805599453, 0.6931471805599453});
}

TEST(ZLossGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    Tensor logits =
        random.tensor({random.integer(2, 5), random.integer(2, 6)}, -3, 3);
    double dLoss = random.uniform(0.5, 2);
    expectGradient(
        "seed " + std::to_string(seed),
        zLossGrad(logits, Tensor::scalar(DType::F64, dLoss)), logits,
        [&](const Tensor &x) { return dLoss * zLoss(x).data[0]; }, random);
  }
}

//===----------------------------------------------------------------------===//
// A whole MoE layer, chained
//===----------------------------------------------------------------------===//

// router -> gate -> dispatch -> expert_ffn -> combine, plus the skywork
// aux loss and the z-loss, differentiated with respect to the tokens by
// chaining the VJPs; the tokens reach the output through the router and
// through dispatch.
TEST(MoeLayerGradTest, ChainedVjpsMatchFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t tokens = random.integer(3, 5), hidden = random.integer(2, 4);
    int64_t experts = random.integer(3, 4), topK = 2,
            ffn = random.integer(2, 3);
    int64_t capacity = (tokens * topK - 1) / experts; // drops some
    std::optional<double> lambda =
        seed % 2 ? std::optional<double>(1.0) : std::nullopt;
    double eps = 1e-6;
    Tensor router = random.tensor({experts, hidden}, -2, 2);
    Tensor gateProj = random.tensor({experts, ffn, hidden});
    Tensor upProj = random.tensor({experts, ffn, hidden});
    Tensor downProj = random.tensor({experts, hidden, ffn});
    Tensor r = random.tensor({tokens, hidden});
    Tensor input;
    do // tokens whose routing a step of kStep cannot change
      input = random.tensor({tokens, hidden});
    while (!untied(
        gate(linear(input, router, nullptr), 1, lambda, eps, false).probs));
    const double alpha = 0.3, beta = 0.1;
    GateResult routed;
    DispatchResult dispatched;
    auto forward = [&](const Tensor &x, bool record) {
      Tensor logits = linear(x, router, nullptr);
      GateResult g = gate(logits, topK, lambda, eps, /*renormalize=*/true);
      DispatchResult d = dispatch(x, g.indices, experts, capacity);
      Tensor y = expertFfn(d.buffer, gateProj, upProj, downProj);
      Tensor out = combine(y, g.weights, g.indices, d.slots);
      if (record) {
        routed = g;
        dispatched = d;
      } else {
        EXPECT_EQ(g.indices.data, routed.indices.data);
        EXPECT_EQ(d.slots.data, dispatched.slots.data);
      }
      return dot(r, out) +
             alpha * auxLoss(AuxLossKind::Skywork, g.probs, g.indices).data[0] +
             beta * zLoss(logits).data[0];
    };
    forward(input, /*record=*/true);
    EXPECT_GT(dispatched.dropped.data[0], 0);

    Tensor logits = linear(input, router, nullptr);
    Tensor y = expertFfn(dispatched.buffer, gateProj, upProj, downProj);
    CombineGrads dCombine =
        combineGrad(y, routed.weights, routed.indices, dispatched.slots, r);
    ExpertFfnGrads dFfn = expertFfnGrad(dispatched.buffer, gateProj, upProj,
                                        downProj, dCombine.dExpertOutput);
    Tensor dViaDispatch =
        dispatchGrad(dFfn.dInput, routed.indices, dispatched.slots);
    Tensor dProbs =
        auxLossGrad(AuxLossKind::Skywork, routed.probs, routed.indices,
                    Tensor::scalar(DType::F64, alpha));
    Tensor dLogits = add(gateGrad(logits, routed.indices, lambda, eps, true,
                                  dProbs, dCombine.dWeights),
                         zLossGrad(logits, Tensor::scalar(DType::F64, beta)));
    Tensor dInput = add(dViaDispatch, linearInputGrad(dLogits, router));
    expectGradient(
        "seed " + std::to_string(seed), dInput, input,
        [&](const Tensor &x) { return forward(x, /*record=*/false); }, random);
  }
}
