//===- GradKernelsTest.cpp - VJPs against finite differences
//---------------===//
//
// Every kernel of GradKernels.h (and rope's VJP, the forward with `inverse`)
// is checked against central finite differences of its forward kernel in
// ReferenceKernels.h: for a random cotangent r and objective L(x) = sum(r *
// f(x)), each element of the gradient and its projection on random
// directions d must match (L(x + h d) - L(x - h d)) / 2h with h = 1e-6 to a
// relative error below 1e-6. All in f64, on small random shapes from fixed
// seeds. Each kernel also has a small case worked out by hand (literals
// evaluated with python3's math module, never with the code under test).
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"

#include "TestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace mlir::moe::ref;
using namespace moe::test;

namespace {

constexpr double kStep = 1e-6;
constexpr double kRelTol = 1e-6;

/// Deterministic values from a fixed seed, independent of the standard
/// library's distributions.
struct Random {
  explicit Random(uint64_t seed) : engine(seed) {}
  double uniform(double lo = -1, double hi = 1) {
    return lo + (hi - lo) * static_cast<double>(engine() >> 11) * 0x1p-53;
  }
  /// A value in [lo, hi], both included.
  int64_t integer(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(engine() % (hi - lo + 1));
  }
  Tensor tensor(std::vector<int64_t> shape, double lo = -1, double hi = 1) {
    Tensor result = Tensor::zeros(DType::F64, std::move(shape));
    for (double &value : result.data)
      value = uniform(lo, hi);
    return result;
  }
  Tensor ids(std::vector<int64_t> shape, int64_t bound) {
    Tensor result = Tensor::zeros(DType::I32, std::move(shape));
    for (double &value : result.data)
      value = static_cast<double>(integer(0, bound - 1));
    return result;
  }
  /// [tokens, k] expert choices, distinct within a token like top-k's.
  Tensor choices(int64_t tokens, int64_t k, int64_t experts) {
    Tensor result = Tensor::zeros(DType::I32, {tokens, k});
    std::vector<int64_t> order(experts);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t e = 0; e < experts; ++e)
        order[e] = e;
      for (int64_t e = experts - 1; e > 0; --e) // Fisher-Yates
        std::swap(order[e], order[integer(0, e)]);
      for (int64_t c = 0; c < k; ++c)
        result.data[t * k + c] = static_cast<double>(order[c]);
    }
    return result;
  }
  std::mt19937_64 engine;
};

double dot(const Tensor &a, const Tensor &b) {
  EXPECT_EQ(a.shape, b.shape);
  double sum = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
    sum += a.data[i] * b.data[i];
  return sum;
}

using Objective = std::function<double(const Tensor &)>;

/// Checks `grad` = dL/dx at `x` against central differences of `objective`:
/// element by element (error relative to the larger of the element and the
/// gradient's largest magnitude) and along random directions (error
/// relative to sum |grad * d|, the projection's scale before cancellation).
void expectGradient(const std::string &what, const Tensor &grad,
                    const Tensor &x, const Objective &objective, Random &random,
                    double step = kStep) {
  SCOPED_TRACE(what);
  ASSERT_EQ(grad.shape, x.shape);
  EXPECT_EQ(grad.dtype, x.dtype);
  auto central = [&](const Tensor &direction) {
    Tensor forward = x, backward = x;
    for (int64_t i = 0; i < x.numel(); ++i) {
      forward.data[i] += step * direction.data[i];
      backward.data[i] -= step * direction.data[i];
    }
    return (objective(forward) - objective(backward)) / (2 * step);
  };
  double largest = 0;
  for (double value : grad.data)
    largest = std::max(largest, std::abs(value));
  for (int64_t i = 0; i < x.numel(); ++i) {
    Tensor unit = Tensor::zeros(x.dtype, x.shape);
    unit.data[i] = 1;
    double numeric = central(unit);
    double scale = std::max({std::abs(grad.data[i]), largest, 1e-300});
    EXPECT_LT(std::abs(numeric - grad.data[i]) / scale, kRelTol)
        << "element " << i << ": analytic " << grad.data[i] << ", numeric "
        << numeric;
  }
  for (int trial = 0; trial < 3; ++trial) {
    Tensor direction = random.tensor(x.shape);
    double analytic = 0, scale = 1e-300;
    for (int64_t i = 0; i < x.numel(); ++i) {
      analytic += grad.data[i] * direction.data[i];
      scale += std::abs(grad.data[i] * direction.data[i]);
    }
    double numeric = central(direction);
    EXPECT_LT(std::abs(numeric - analytic) / scale, kRelTol)
        << "direction " << trial << ": analytic " << analytic << ", numeric "
        << numeric;
  }
}

const uint64_t kSeeds[] = {1, 2, 3, 4, 5};

} // namespace

//===----------------------------------------------------------------------===//
// embedding
//===----------------------------------------------------------------------===//

TEST(EmbeddingGradTest, ScatterAddsRepeatedIds) {
  // ids {1, 0, 1, 3}: row 1 gathers twice, {1, 2} + {5, 6}; row 2 never.
  Tensor dResult = f64({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  expectTensor(embeddingGrad(i32({2, 2}, {1, 0, 1, 3}), dResult, 4), DType::F64,
               {4, 2}, {3, 4, 6, 8, 0, 0, 7, 8});
}

TEST(EmbeddingGradTest, OutOfRangeIdThrows) {
  std::string error = errorOf([] {
    embeddingGrad(i32({1}, {5}), f64({1, 2}, {1, 2}), /*vocab=*/4);
  });
  EXPECT_TRUE(contains(error, "token id 5")) << error;
}

TEST(EmbeddingGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t vocab = random.integer(2, 6), hidden = random.integer(2, 6);
    Tensor ids =
        random.ids({random.integer(1, 3), random.integer(2, 5)}, vocab);
    Tensor table = random.tensor({vocab, hidden});
    Tensor r = random.tensor(embedding(table, ids).shape);
    expectGradient(
        "seed " + std::to_string(seed), embeddingGrad(ids, r, vocab), table,
        [&](const Tensor &x) { return dot(r, embedding(x, ids)); }, random);
  }
}

//===----------------------------------------------------------------------===//
// rms_norm
//===----------------------------------------------------------------------===//

TEST(RmsNormGradTest, HandWorked) {
  // x = {3, 4}, w = {1, 2}, eps = 0, dy = {1, 1}: s = 1 / sqrt(12.5);
  // g = dy w = {1, 2}, g.x = 11; dx_j = s g_j - s^3 x_j / 2 * 11;
  // dw = dy x s = {3 s, 4 s}.
  RmsNormGrads grads = rmsNormGrad(f64({1, 2}, {3, 4}), f64({2}, {1, 2}), 0,
                                   f64({1, 2}, {1, 1}));
  expectTensor(grads.dInput, DType::F64, {1, 2},
               {-0.09050966799187804, 0.06788225099390854});
  expectTensor(grads.dWeight, DType::F64, {2},
               {0.848528137423857, 1.131370849898476});
}

TEST(RmsNormGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t hidden = random.integer(2, 6);
    double eps = seed % 2 ? 1e-5 : 0.1;
    Tensor input = seed % 2 ? random.tensor({random.integer(1, 3),
                                             random.integer(2, 5), hidden})
                            : random.tensor({random.integer(2, 5), hidden});
    Tensor weight = random.tensor({hidden});
    Tensor r = random.tensor(input.shape);
    RmsNormGrads grads = rmsNormGrad(input, weight, eps, r);
    std::string what = "seed " + std::to_string(seed);
    expectGradient(
        what + " input", grads.dInput, input,
        [&](const Tensor &x) { return dot(r, rmsNorm(x, weight, eps)); },
        random);
    expectGradient(
        what + " weight", grads.dWeight, weight,
        [&](const Tensor &w) { return dot(r, rmsNorm(input, w, eps)); },
        random);
  }
}

//===----------------------------------------------------------------------===//
// linear and bias
//===----------------------------------------------------------------------===//

TEST(LinearGradTest, HandWorked) {
  // dx = dy W: {1, 2} [[1, 2, 3], [4, 5, 6]] = {9, 12, 15}.
  expectTensor(
      linearInputGrad(f64({1, 2}, {1, 2}), f64({2, 3}, {1, 2, 3, 4, 5, 6})),
      DType::F64, {1, 3}, {9, 12, 15});
  // dW[o, i] = sum_r dy[r, o] x[r, i] with dy = [[1, 2], [3, 4]] and
  // x = [[1, 0, 2], [0, 1, 1]]: row 0 = {1, 3, 5}, row 1 = {2, 4, 8}.
  expectTensor(linearWeightGrad(f64({2, 2}, {1, 2, 3, 4}),
                                f64({2, 3}, {1, 0, 2, 0, 1, 1})),
               DType::F64, {2, 3}, {1, 3, 5, 2, 4, 8});
  // db = column sums over every leading axis: {1 + 4, 2 + 5, 3 + 6}.
  expectTensor(biasGrad(f64({2, 1, 3}, {1, 2, 3, 4, 5, 6})), DType::F64, {3},
               {5, 7, 9});
}

TEST(LinearGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t in = random.integer(2, 6), out = random.integer(2, 6);
    Tensor input =
        random.tensor({random.integer(1, 3), random.integer(2, 5), in});
    Tensor weight = random.tensor({out, in}), bias = random.tensor({out});
    Tensor r = random.tensor(linear(input, weight, &bias).shape);
    std::string what = "seed " + std::to_string(seed);
    expectGradient(
        what + " input", linearInputGrad(r, weight), input,
        [&](const Tensor &x) { return dot(r, linear(x, weight, &bias)); },
        random);
    expectGradient(
        what + " weight", linearWeightGrad(r, input), weight,
        [&](const Tensor &w) { return dot(r, linear(input, w, &bias)); },
        random);
    expectGradient(
        what + " bias", biasGrad(r), bias,
        [&](const Tensor &b) { return dot(r, linear(input, weight, &b)); },
        random);
  }
}

//===----------------------------------------------------------------------===//
// rope (its VJP is the forward with `inverse`)
//===----------------------------------------------------------------------===//

TEST(RopeGradTest, InverseRotatesBackHandWorked) {
  // head_dim 2, theta irrelevant (f_0 = 1): position 1 rotates by -1 rad,
  // {1, 0} -> {cos 1, -sin 1}; position 0 is unchanged.
  expectTensor(rope(f64({1, 2, 1, 2}, {1, 0, 1, 0}), 1e4, /*inverse=*/true),
               DType::F64, {1, 2, 1, 2},
               {1, 0, 0.5403023058681398, -0.8414709848078965});
}

TEST(RopeGradTest, InverseMatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    double theta = seed % 2 ? 1e4 : 3.0;
    Tensor input =
        random.tensor({random.integer(1, 3), random.integer(2, 5),
                       random.integer(1, 3), 2 * random.integer(1, 3)});
    Tensor r = random.tensor(input.shape);
    expectGradient(
        "seed " + std::to_string(seed), rope(r, theta, /*inverse=*/true), input,
        [&](const Tensor &x) { return dot(r, rope(x, theta)); }, random);
  }
}

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

TEST(AttentionGradTest, HandWorkedCausal) {
  // One head, head_dim 1 (scale 1), q = {1, 2}, k = {0.5, -1}, v = {3, 5},
  // dOut = {1, 2}. Row 0 sees only j = 0: p = 1, dv0 += 1, no score grad.
  // Row 1: p = softmax(2 k) = softmax({1, -2}) = {0.95257..., 0.04742...};
  // dv_j += 2 p_j; dp = 2 v = {6, 10}; ds_j = p_j (dp_j - p.dp);
  // dq1 = ds.k = -0.27105...; dk_j = 2 ds_j = {-0.36141..., 0.36141...}.
  // The forward's output and log-sum-exp come from moe.attention.
  Tensor q = f64({1, 2, 1, 1}, {1, 2}), k = f64({1, 2, 1, 1}, {0.5, -1});
  Tensor v = f64({1, 2, 1, 1}, {3, 5});
  AttentionResult forward = attention(q, k, v, /*causal=*/true);
  AttentionGrads grads =
      attentionGrad(q, k, v, forward.result, forward.lse, /*causal=*/true,
                    f64({1, 2, 1, 1}, {1, 2}));
  expectTensor(grads.dQuery, DType::F64, {1, 2, 1, 1},
               {0, -0.2710599583854736});
  expectTensor(grads.dKey, DType::F64, {1, 2, 1, 1},
               {-0.36141327784730026, 0.361413277847297});
  expectTensor(grads.dValue, DType::F64, {1, 2, 1, 1},
               {2.9051482536448665, 0.09485174635513358});
}

TEST(AttentionGradTest, MatchesFiniteDifferences) {
  // (heads, kv_heads): plain, grouped-query and multi-query.
  const std::pair<int64_t, int64_t> headConfigs[] = {
      {1, 1}, {2, 1}, {4, 2}, {3, 3}};
  for (uint64_t seed : kSeeds)
    for (auto [heads, kvHeads] : headConfigs)
      for (bool causal : {false, true}) {
        Random random(seed * 100 + heads * 10 + kvHeads);
        int64_t batch = random.integer(1, 2), seq = random.integer(2, 5);
        int64_t headDim = random.integer(2, 4);
        Tensor query = random.tensor({batch, seq, heads, headDim}, -1.5, 1.5);
        Tensor key = random.tensor({batch, seq, kvHeads, headDim}, -1.5, 1.5);
        Tensor value = random.tensor({batch, seq, kvHeads, headDim});
        Tensor r = random.tensor(query.shape);
        AttentionResult forward = attention(query, key, value, causal);
        AttentionGrads grads = attentionGrad(query, key, value, forward.result,
                                             forward.lse, causal, r);
        std::string what = "seed " + std::to_string(seed) + " heads " +
                           std::to_string(heads) + "/" +
                           std::to_string(kvHeads) + (causal ? " causal" : "");
        expectGradient(
            what + " query", grads.dQuery, query,
            [&](const Tensor &x) {
              return dot(r, attention(x, key, value, causal).result);
            },
            random);
        expectGradient(
            what + " key", grads.dKey, key,
            [&](const Tensor &x) {
              return dot(r, attention(query, x, value, causal).result);
            },
            random);
        expectGradient(
            what + " value", grads.dValue, value,
            [&](const Tensor &x) {
              return dot(r, attention(query, key, x, causal).result);
            },
            random);
      }
}

//===----------------------------------------------------------------------===//
// swiglu
//===----------------------------------------------------------------------===//

TEST(SwigluGradTest, HandWorked) {
  // gate {0, 1}, up {2, 3}, dy = 1: silu(0) = 0, silu'(0) = 1/2;
  // silu(1) = sigmoid(1) = 0.73105...,
  // silu'(1) = sigmoid(1) (2 - sigmoid(1)) = 0.92767..., times up 3.
  SwigluGrads grads =
      swigluGrad(f64({2}, {0, 1}), f64({2}, {2, 3}), f64({2}, {1, 1}));
  expectTensor(grads.dGate, DType::F64, {2}, {1.0, 2.7830115356144605});
  expectTensor(grads.dUp, DType::F64, {2}, {0, 0.7310585786300049});
}

TEST(SwigluGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    std::vector<int64_t> shape = {random.integer(1, 3), random.integer(2, 5),
                                  random.integer(2, 6)};
    Tensor gate = random.tensor(shape, -4, 4), up = random.tensor(shape);
    Tensor r = random.tensor(shape);
    SwigluGrads grads = swigluGrad(gate, up, r);
    std::string what = "seed " + std::to_string(seed);
    expectGradient(
        what + " gate", grads.dGate, gate,
        [&](const Tensor &x) { return dot(r, swiglu(x, up)); }, random);
    expectGradient(
        what + " up", grads.dUp, up,
        [&](const Tensor &x) { return dot(r, swiglu(gate, x)); }, random);
  }
}

//===----------------------------------------------------------------------===//
// cross_entropy
//===----------------------------------------------------------------------===//

TEST(CrossEntropyGradTest, HandWorkedMeanOverPositions) {
  // Zero logits over 2 classes: softmax = 1/2; (softmax - onehot) scaled by
  // dLoss / rows = 2 / 2.
  expectTensor(crossEntropyGrad(f64({2, 2}, {0, 0, 0, 0}), i32({2}, {0, 1}),
                                Tensor::scalar(DType::F64, 2)),
               DType::F64, {2, 2}, {-0.5, 0.5, 0.5, -0.5});
}

TEST(CrossEntropyGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    int64_t vocab = random.integer(2, 6);
    std::vector<int64_t> lead = {random.integer(1, 3), random.integer(2, 5)};
    if (seed % 2)
      lead = {random.integer(2, 5)};
    std::vector<int64_t> shape = lead;
    shape.push_back(vocab);
    Tensor logits = random.tensor(shape, -3, 3);
    Tensor targets = random.ids(lead, vocab);
    double dLoss = random.uniform(0.5, 2);
    expectGradient(
        "seed " + std::to_string(seed),
        crossEntropyGrad(logits, targets, Tensor::scalar(DType::F64, dLoss)),
        logits,
        [&](const Tensor &x) {
          return dLoss * crossEntropy(x, targets).data[0];
        },
        random);
  }
}

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

TEST(GateGradTest, MatchesFiniteDifferences) {
  const std::optional<double> lambdas[] = {std::nullopt, 1.0, 2.0};
  for (uint64_t seed : kSeeds)
    for (std::optional<double> lambda : lambdas)
      for (bool renormalize : {false, true}) {
        Random random(seed * 100 +
                      static_cast<uint64_t>(lambda ? *lambda : 0) * 10 +
                      renormalize);
        int64_t tokens = random.integer(2, 5), experts = random.integer(3, 6);
        int64_t topK = random.integer(1, 3);
        double eps = seed % 2 ? 1e-6 : 0.3; // a large eps exercises its term
        Tensor logits = untiedLogits(random, tokens, experts, lambda, eps);
        GateResult forward = gate(logits, topK, lambda, eps, renormalize);
        Tensor rProbs = random.tensor({tokens, experts});
        Tensor rWeights = random.tensor({tokens, topK});
        std::string what = "seed " + std::to_string(seed) + " lambda " +
                           (lambda ? std::to_string(*lambda) : "none") +
                           (renormalize ? " renormalize" : "");
        expectGradient(
            what,
            gateGrad(logits, forward.indices, lambda, eps, renormalize, rProbs,
                     rWeights),
            logits,
            [&](const Tensor &x) {
              GateResult result = gate(x, topK, lambda, eps, renormalize);
              EXPECT_EQ(result.indices.data, forward.indices.data);
              return dot(rProbs, result.probs) + dot(rWeights, result.weights);
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
