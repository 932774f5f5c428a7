//===- CpuGateKernelsTest.cpp - f32 CPU gate kernels ----------------------===//
//
// The gate's kernels of moert::cpu (gate, gateGrad, gateNorm, the expert
// loads and bias updates) against the reference kernels (which compute in
// double) on random f32 inputs of several shapes: the chosen experts must
// match exactly, ties going to the lower expert, and bad indices throw the
// reference's message.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moert/CpuKernels.h"

#include "Bf16TestUtils.h"
#include "CpuRoutingTestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace moe::test;
namespace cpu = moert::cpu;
namespace ref = mlir::moe::ref;

namespace {

std::optional<double> lambdaOf(const cpu::GateConfig &config) {
  return config.normalize ? std::optional<double>(config.lambda) : std::nullopt;
}

/// Runs the CPU gate of `s`'s shape under `config` on `logits` (and `bias`,
/// nullable) and expects the reference's probs and weights (within 1e-6) and
/// indices (exactly); returns the CPU's indices.
Ids expectGateMatchesReference(const Shape &s, const cpu::GateConfig &config,
                               const Floats &logits, const Floats *bias,
                               const std::string &name) {
  Floats probs = output(s.tokens * s.experts),
         weights = output(s.tokens * s.topK);
  Ids indices(s.tokens * s.topK, -7);
  cpu::gate(logits.data(), bias ? bias->data() : nullptr, s.tokens, s.experts,
            config, probs.data(), weights.data(), indices.data());
  Tensor biasRef = f32({s.experts}, bias ? *bias : Floats(s.experts));
  ref::GateResult expected = ref::gate(
      f32({s.tokens, s.experts}, logits), s.topK, lambdaOf(config), config.eps,
      config.renormalize, config.scoring, bias ? &biasRef : nullptr,
      config.scale, config.groups, config.groupTopK, config.groupScoreTop);
  expectClose(probs, expected.probs, "gate probs " + name, 1e-6);
  expectExact(indices, expected.indices, "gate indices " + name);
  expectClose(weights, expected.weights, "gate weights " + name, 1e-6);
  return indices;
}

} // namespace

//===----------------------------------------------------------------------===//
// gate
//===----------------------------------------------------------------------===//

TEST(CpuGateKernelsTest, GateAndGradMatchReference) {
  for (const Shape &s : kShapes)
    for (bool normalize : {false, true})
      for (bool renormalize : {false, true})
        for (auto scoring :
             {moert::GateScoring::Softmax, moert::GateScoring::Sigmoid})
          for (bool biased : {false, true}) {
            bool sigmoid = scoring == moert::GateScoring::Sigmoid;
            std::string name = s.name() + (normalize ? " norm" : "") +
                               (renormalize ? " renorm" : "") +
                               (sigmoid ? " sigmoid" : "") +
                               (biased ? " bias, scale 2.5" : "");
            cpu::GateConfig config = gateConfig(
                s.topK, normalize, normalize ? 2.5 : 1.0, renormalize);
            config.scoring = scoring;
            config.scale = biased ? 2.5 : 1.0;
            Floats logits = randomFloats(s.tokens * s.experts, 1, 2.0f);
            Floats bias = randomFloats(s.experts, 4, 0.2f);
            Ids indices = expectGateMatchesReference(
                s, config, logits, biased ? &bias : nullptr, name);

            Floats dProbs = randomFloats(s.tokens * s.experts, 2),
                   dWeights = randomFloats(s.tokens * s.topK, 3);
            Floats dLogits = output(s.tokens * s.experts);
            cpu::gateGrad(logits.data(), indices.data(), s.tokens, s.experts,
                          config, dProbs.data(), dWeights.data(),
                          dLogits.data());
            expectClose(dLogits,
                        ref::gateGrad(f32({s.tokens, s.experts}, logits),
                                      i32({s.tokens, s.topK}, indices),
                                      lambdaOf(config), config.eps, renormalize,
                                      f32({s.tokens, s.experts}, dProbs),
                                      f32({s.tokens, s.topK}, dWeights),
                                      scoring, config.scale),
                        "gateGrad " + name);
          }
}

TEST(CpuGateKernelsTest, GroupedGateMatchesReference) {
  // DeepSeek-V3's groups: of 2 experts (one, or enough, chosen) and halves
  // (one chosen), on sigmoid scores with a bias and on softmax ones, each
  // scored by its two best (V3's) and by its best (V2's).
  for (const Shape &s : kShapes) {
    if (s.experts < 4 || s.experts % 2 != 0)
      continue;
    for (auto [groups, groupTopK] :
         {std::pair<int64_t, int64_t>{s.experts / 2, (s.topK + 1) / 2},
          {2, 1}}) {
      if (s.topK > groupTopK * (s.experts / groups))
        continue;
      for (auto [sigmoid, scoreTop] :
           {std::pair<bool, int64_t>{false, 2}, {true, 2}, {false, 1}}) {
        std::string name = s.name() + " groups " + std::to_string(groups) +
                           "/" + std::to_string(groupTopK) +
                           (sigmoid ? " sigmoid" : "") + " by " +
                           std::to_string(scoreTop);
        cpu::GateConfig config = gateConfig(s.topK, false, 1.0, true);
        config.scoring =
            sigmoid ? moert::GateScoring::Sigmoid : moert::GateScoring::Softmax;
        config.groups = groups;
        config.groupTopK = groupTopK;
        config.groupScoreTop = scoreTop;
        Floats bias = randomFloats(s.experts, 6, 0.2f);
        expectGateMatchesReference(s, config,
                                   randomFloats(s.tokens * s.experts, 5, 2.0f),
                                   sigmoid ? &bias : nullptr, name);
      }
    }
  }
}

TEST(CpuGateKernelsTest, UnderflowedSigmoidScoresWeighZero) {
  // f32 scores of -120 round to 0 (the double ones do not): the
  // renormalized weights are 0, not NaN, as the reference's.
  Floats logits = {-120, -130, -800, -900};
  cpu::GateConfig config = gateConfig(1, false, 1.0, true);
  config.scoring = moert::GateScoring::Sigmoid;
  Floats probs = output(4), weights = output(2), dLogits = output(4);
  Ids indices(2, -7);
  cpu::gate(logits.data(), nullptr, 2, 2, config, probs.data(), weights.data(),
            indices.data());
  EXPECT_EQ(weights, (Floats{0, 0}));
  ref::GateResult expected = ref::gate(f32({2, 2}, logits), 1, std::nullopt,
                                       1e-6, true, moert::GateScoring::Sigmoid);
  expectClose(probs, expected.probs, "underflowed probs", 1e-6);
  expectExact(indices, expected.indices, "underflowed indices");
  Floats dProbs = {1, 1, 1, 1}, dWeights = {1, 1};
  cpu::gateGrad(logits.data(), indices.data(), 2, 2, config, dProbs.data(),
                dWeights.data(), dLogits.data());
  for (float value : dLogits)
    EXPECT_TRUE(std::isfinite(value));
}

TEST(CpuGateKernelsTest, ExpertLoadAndBiasUpdateMatchReference) {
  Ids indices = {0, 2, 2, 3, 0, 2, 1, 2};
  std::vector<int64_t> load(4, -1);
  cpu::expertLoad(indices.data(), 8, 4, load.data());
  EXPECT_EQ(load, (std::vector<int64_t>{2, 1, 4, 1}));
  Floats bias = {0.5f, -0.25f, 0.0f, 1.0f};
  Floats updated = output(4);
  cpu::expertBiasUpdate(bias.data(), load.data(), 4, 1e-3, updated.data());
  Tensor loadRef{DType::I64, {4}, {2, 1, 4, 1}};
  expectExact(updated, ref::expertBiasUpdate(f32({4}, bias), loadRef, 1e-3),
              "expertBiasUpdate");
  // In place, as the step updates its bias state.
  cpu::expertBiasUpdate(bias.data(), load.data(), 4, 1e-3, bias.data());
  EXPECT_EQ(bias, updated);
  Ids bad = {0, 4};
  EXPECT_EQ(errorOf([&] { cpu::expertLoad(bad.data(), 2, 4, load.data()); }),
            "moe.expert_load: expert index 4 is outside [0, 4)");
}

TEST(CpuGateKernelsTest, GateTiesPickTheLowerExpert) {
  // Equal logits give equal probabilities: the lower index goes first.
  Floats logits = {1,  1, 1, 1,  // all tied: 0, 1
                   0,  2, 2, 2,  // three tied at the top: 1, 2
                   3,  0, 3, -1, // 0, 2
                   -5, 4, 1, 4}; // 1, 3
  for (bool normalize : {false, true}) {
    cpu::GateConfig config = gateConfig(2, normalize, 1.0, true);
    Floats probs = output(16), weights = output(8);
    Ids indices(8, -7);
    cpu::gate(logits.data(), nullptr, 4, 4, config, probs.data(),
              weights.data(), indices.data());
    EXPECT_EQ(indices, (Ids{0, 1, 1, 2, 0, 2, 1, 3}));
    EXPECT_EQ(weights[0], 0.5f);
    EXPECT_EQ(weights[1], 0.5f);
    expectExact(
        indices,
        ref::gate(f32({4, 4}, logits), 2, lambdaOf(config), 1e-6, true).indices,
        "tied gate indices");
  }
}

TEST(CpuGateKernelsTest, GateGradOutOfRangeIndexThrows) {
  Floats logits = randomFloats(6, 1), dProbs = randomFloats(6, 2),
         dWeights = randomFloats(4, 3), dLogits = output(6);
  for (int32_t bad : {3, -1}) {
    Ids indices = {0, 1, 2, bad};
    std::string message = errorOf([&] {
      cpu::gateGrad(logits.data(), indices.data(), 2, 3,
                    gateConfig(2, true, 1.0, true), dProbs.data(),
                    dWeights.data(), dLogits.data());
    });
    EXPECT_EQ(message, "moe.gate: expert index " + std::to_string(bad) +
                           " is outside [0, 3)");
    EXPECT_EQ(message, errorOf([&] {
                ref::gateGrad(f32({2, 3}, logits), i32({2, 2}, indices), 1.0,
                              1e-6, true, f32({2, 3}, dProbs),
                              f32({2, 2}, dWeights));
              }));
  }
}

TEST(CpuGateKernelsTest, GateNormAndGradMatchReference) {
  for (const Shape &s : gateNormShapes(kShapes)) {
    std::string name = s.name();
    int64_t count = s.tokens * s.experts;
    std::pair<Floats, Floats> inputs = gateNormInputs(s);
    const Floats &logits = inputs.first, &dy = inputs.second;
    auto run = [&] {
      std::vector<Floats> outs = {output(count), output(count)};
      cpu::gateNorm(logits.data(), s.tokens, s.experts, 2.5, 1e-6,
                    outs[0].data());
      cpu::gateNormGrad(logits.data(), dy.data(), s.tokens, s.experts, 2.5,
                        1e-6, outs[1].data());
      return outs;
    };
    std::vector<Floats> first = run(), second = run();
    Tensor logitsT = f32({s.tokens, s.experts}, logits);
    expectClose(first[0], ref::gateNorm(logitsT, 2.5, 1e-6), "gateNorm " + name,
                1e-6);
    expectClose(
        first[1],
        ref::gateNormGrad(logitsT, 2.5, 1e-6, f32({s.tokens, s.experts}, dy)),
        "gateNormGrad " + name);
    for (size_t i = 0; i < first.size(); ++i)
      expectBitwiseEqual(first[i], second[i], "gate norm " + name);
  }
}
