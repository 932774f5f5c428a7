//===- TransformerGradKernelsTest.cpp - transformer VJPs ------------------===//
//
// The VJPs of the transformer ops in GradKernels.h (and rope's, the forward
// with `inverse`) against central finite differences of their forward
// kernels (FiniteDifferences.h), and each on a small case worked out by
// hand (literals evaluated with python3's math module, never with the code
// under test).
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
// embedding
//===----------------------------------------------------------------------===//

TEST(EmbeddingGradTest, ScatterAddsRepeatedIds) {
  // ids {1, 0, 1, 3}: row 1 gathers twice, {1, 2} + {5, 6}; row 2 never.
  Tensor dResult = f64({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  expectTensor(embeddingGrad(i32({2, 2}, {1, 0, 1, 3}), dResult, 4), DType::F64,
               {4, 2}, {3, 4, 6, 8, 0, 0, 7, 8});
}

TEST(EmbeddingGradTest, PaddingRowGetsNoGradient) {
  // ids {1, 0, 1, 3} with padding id 1: row 1 stays 0.
  Tensor dResult = f64({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  expectTensor(embeddingGrad(i32({2, 2}, {1, 0, 1, 3}), dResult, 4,
                             /*paddingId=*/1),
               DType::F64, {4, 2}, {3, 4, 0, 0, 0, 0, 7, 8});
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
    // Halves turned, then pairs (2i, 2i + 1).
    for (bool interleaved : {false, true})
      expectGradient(
          "seed " + std::to_string(seed) + (interleaved ? " interleaved" : ""),
          rope(r, theta, /*inverse=*/true, {}, 0, interleaved), input,
          [&](const Tensor &x) {
            return dot(r, rope(x, theta, false, {}, 0, interleaved));
          },
          random);
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
  AttentionResult forward = attention(q, k, v, moert::AttentionMask{true});
  AttentionGrads grads =
      attentionGrad(q, k, v, forward.result, forward.lse,
                    moert::AttentionMask{true}, f64({1, 2, 1, 1}, {1, 2}));
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
      for (moert::AttentionMask mask :
           {moert::AttentionMask{false}, moert::AttentionMask{true},
            moert::AttentionMask{true, 1}, moert::AttentionMask{true, 2}}) {
        Random random(seed * 100 + heads * 10 + kvHeads);
        int64_t batch = random.integer(1, 2), seq = random.integer(2, 5);
        int64_t headDim = random.integer(2, 4);
        Tensor query = random.tensor({batch, seq, heads, headDim}, -1.5, 1.5);
        Tensor key = random.tensor({batch, seq, kvHeads, headDim}, -1.5, 1.5);
        Tensor value = random.tensor({batch, seq, kvHeads, headDim});
        Tensor r = random.tensor(query.shape);
        AttentionResult forward = attention(query, key, value, mask);
        AttentionGrads grads = attentionGrad(query, key, value, forward.result,
                                             forward.lse, mask, r);
        std::string what =
            "seed " + std::to_string(seed) + " heads " + std::to_string(heads) +
            "/" + std::to_string(kvHeads) + (mask.causal ? " causal" : "") +
            " window " + std::to_string(mask.window);
        expectGradient(
            what + " query", grads.dQuery, query,
            [&](const Tensor &x) {
              return dot(r, attention(x, key, value, mask).result);
            },
            random);
        expectGradient(
            what + " key", grads.dKey, key,
            [&](const Tensor &x) {
              return dot(r, attention(query, x, value, mask).result);
            },
            random);
        expectGradient(
            what + " value", grads.dValue, value,
            [&](const Tensor &x) {
              return dot(r, attention(query, key, x, mask).result);
            },
            random);
      }
}

TEST(AttentionGradTest, SinksMatchFiniteDifferences) {
  // With sinks the forward's lse carries them, so moe.attention_grad's
  // gradients hold unchanged; moe.attention_sinks_grad gives the sinks'.
  for (uint64_t seed : kSeeds)
    for (moert::AttentionMask mask :
         {moert::AttentionMask{false}, moert::AttentionMask{true},
          moert::AttentionMask{true, 2}}) {
      Random random(seed * 10 + mask.window);
      int64_t batch = random.integer(1, 2), seq = random.integer(2, 5);
      int64_t headDim = random.integer(2, 4);
      Tensor query = random.tensor({batch, seq, 4, headDim}, -1.5, 1.5);
      Tensor key = random.tensor({batch, seq, 2, headDim}, -1.5, 1.5);
      Tensor value = random.tensor({batch, seq, 2, headDim});
      Tensor sinks = random.tensor({4}, -1.5, 1.5);
      Tensor r = random.tensor(query.shape);
      AttentionResult forward = attention(query, key, value, mask, &sinks);
      AttentionGrads grads = attentionGrad(query, key, value, forward.result,
                                           forward.lse, mask, r);
      Tensor dSinks = attentionSinksGrad(sinks, forward.lse, forward.result, r);
      std::string what = "seed " + std::to_string(seed) +
                         (mask.causal ? " causal" : "") + " window " +
                         std::to_string(mask.window);
      expectGradient(
          what + " query", grads.dQuery, query,
          [&](const Tensor &x) {
            return dot(r, attention(x, key, value, mask, &sinks).result);
          },
          random);
      expectGradient(
          what + " key", grads.dKey, key,
          [&](const Tensor &x) {
            return dot(r, attention(query, x, value, mask, &sinks).result);
          },
          random);
      expectGradient(
          what + " value", grads.dValue, value,
          [&](const Tensor &x) {
            return dot(r, attention(query, key, x, mask, &sinks).result);
          },
          random);
      expectGradient(
          what + " sinks", dSinks, sinks,
          [&](const Tensor &x) {
            return dot(r, attention(query, key, value, mask, &x).result);
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
// sigmoid_scale
//===----------------------------------------------------------------------===//

TEST(SigmoidScaleGradTest, MatchesFiniteDifferences) {
  for (uint64_t seed : kSeeds) {
    Random random(seed);
    std::vector<int64_t> shape = {random.integer(1, 3), random.integer(2, 5),
                                  random.integer(2, 6)};
    // A gate a row, or (odd seeds) an element.
    std::vector<int64_t> logitShape = {shape[0], shape[1],
                                       seed % 2 ? shape[2] : 1};
    Tensor input = random.tensor(shape),
           logit = random.tensor(logitShape, -4, 4);
    Tensor r = random.tensor(shape);
    SigmoidScaleGrads grads = sigmoidScaleGrad(input, logit, r);
    std::string what = "seed " + std::to_string(seed);
    expectGradient(
        what + " input", grads.dInput, input,
        [&](const Tensor &x) { return dot(r, sigmoidScale(x, logit)); },
        random);
    expectGradient(
        what + " logit", grads.dLogit, logit,
        [&](const Tensor &x) { return dot(r, sigmoidScale(input, x)); },
        random);
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

TEST(CrossEntropyGradTest, ZeroDivisorGivesZeroGradient) {
  // A divisor of 0 (no counted target in the whole step) makes the loss 0
  // whatever the logits: its gradient is 0 too, not dLoss / 0.
  Tensor logits = f64({2, 2}, {0, 0, 0, 0}), targets = i32({2}, {0, 1});
  LossTargets none{std::nullopt, 0.0};
  expectTensor(crossEntropy(logits, targets, none), DType::F64, {}, {0});
  expectTensor(
      crossEntropyGrad(logits, targets, Tensor::scalar(DType::F64, 2), none),
      DType::F64, {2, 2}, {0, 0, 0, 0});
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
