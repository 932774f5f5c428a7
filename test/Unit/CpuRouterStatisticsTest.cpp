//===- CpuRouterStatisticsTest.cpp - f32 CPU router losses and metrics ----===//
//
// The router losses (Skywork and Switch aux losses, transformers' pooled aux
// loss, z-loss) and the routing metrics of moert::cpu against the reference
// kernels (which compute in double), and the pooled loss against a case
// worked by hand.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moert/CpuKernels.h"

#include "CpuRoutingTestUtils.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace moe::test;
namespace cpu = moert::cpu;
namespace ref = mlir::moe::ref;

//===----------------------------------------------------------------------===//
// Router losses
//===----------------------------------------------------------------------===//

TEST(CpuRouterStatisticsTest, PooledAuxLossByHand) {
  // Layers of 2 and 1 tokens, 2 experts, top-1: N = 3 pooled tokens,
  // c = (2, 1) choices, S = (0.6 + 0.3 + 0.9, 0.4 + 0.7 + 0.1) = (1.8, 1.2);
  // loss = 2 ((2/3)(1.8/3) + (1/3)(1.2/3)) = 16/15, d/dp_j = 2 c_j / 9.
  Floats p0 = {0.6f, 0.4f, 0.3f, 0.7f}, p1 = {0.9f, 0.1f};
  Ids i0 = {0, 1}, i1 = {0};
  const float *probs[] = {p0.data(), p1.data()};
  const int32_t *indices[] = {i0.data(), i1.data()};
  int64_t assignments[] = {2, 1};
  EXPECT_NEAR(cpu::pooledAuxLoss(probs, indices, assignments, 2, 2, 1),
              16.0 / 15.0, 1e-6);
  Floats d0 = output(4), d1 = output(2);
  float *dProbs[] = {d0.data(), d1.data()};
  cpu::pooledAuxLossGrad(indices, assignments, 2, 2, 1, 1.0f, dProbs);
  for (const Floats &grad : {d0, d1})
    for (size_t i = 0; i < grad.size(); ++i)
      EXPECT_NEAR(grad[i], i % 2 == 0 ? 4.0 / 9.0 : 2.0 / 9.0, 1e-7);
}

TEST(CpuRouterStatisticsTest, PooledAuxLossAndGradMatchReference) {
  // Three layers of 40 tokens, 8 experts, top-2; and one layer alone, where
  // the pooled loss is top_k times the Switch loss.
  int64_t tokens = 40, experts = 8, topK = 2;
  for (int64_t layers : {3, 1}) {
    std::vector<Floats> probs;
    std::vector<Ids> indices;
    std::vector<Tensor> probsT, indicesT;
    for (int64_t layer = 0; layer < layers; ++layer) {
      Floats logits = randomFloats(tokens * experts, 10 + layer, 2.0f);
      probs.push_back(output(logits.size()));
      indices.emplace_back(tokens * topK);
      Floats weights = output(tokens * topK);
      cpu::gate(logits.data(), nullptr, tokens, experts,
                gateConfig(topK, false, 1.0, true), probs.back().data(),
                weights.data(), indices.back().data());
      probsT.push_back(f32({tokens, experts}, probs.back()));
      indicesT.push_back(i32({tokens, topK}, indices.back()));
    }
    std::vector<const float *> probsPtr;
    std::vector<const int32_t *> indicesPtr;
    std::vector<const Tensor *> probsRef, indicesRef;
    std::vector<int64_t> assignments(layers, tokens * topK);
    for (int64_t layer = 0; layer < layers; ++layer) {
      probsPtr.push_back(probs[layer].data());
      indicesPtr.push_back(indices[layer].data());
      probsRef.push_back(&probsT[layer]);
      indicesRef.push_back(&indicesT[layer]);
    }
    std::string name = std::to_string(layers) + " layers";
    float loss = cpu::pooledAuxLoss(probsPtr.data(), indicesPtr.data(),
                                    assignments.data(), layers, experts, topK);
    Tensor expected = ref::pooledAuxLoss(probsRef, indicesRef);
    expectScalarClose(loss, expected, "pooledAuxLoss " + name);
    if (layers == 1)
      expectScalarClose(
          loss / topK,
          ref::auxLoss(ref::AuxLossKind::Switch, probsT[0], indicesT[0]),
          "one layer: top_k x Switch");

    std::vector<Floats> dProbs(layers, output(tokens * experts));
    std::vector<float *> dProbsPtr;
    for (Floats &grad : dProbs)
      dProbsPtr.push_back(grad.data());
    cpu::pooledAuxLossGrad(indicesPtr.data(), assignments.data(), layers,
                           experts, topK, 0.75f, dProbsPtr.data());
    std::vector<Tensor> expectedGrads = ref::pooledAuxLossGrad(
        indicesRef, experts, Tensor::scalar(DType::F32, 0.75));
    for (int64_t layer = 0; layer < layers; ++layer)
      expectClose(dProbs[layer], expectedGrads[layer],
                  "pooledAuxLossGrad " + name, 1e-6);
  }
}

TEST(CpuRouterStatisticsTest, AuxAndZLossesAndGradsMatchReference) {
  // 1000 tokens span several reduction chunks.
  Shape big{1000, 1, 16, 3, 1};
  for (const Shape &s : {kShapes[0], kShapes[2], kShapes[4], kShapes[5], big})
    for (auto kind : {cpu::AuxLossKind::Skywork, cpu::AuxLossKind::Switch}) {
      bool skywork = kind == cpu::AuxLossKind::Skywork;
      std::string name = s.name() + (skywork ? " skywork" : " switch");
      auto refKind =
          skywork ? ref::AuxLossKind::Skywork : ref::AuxLossKind::Switch;
      Floats logits = randomFloats(s.tokens * s.experts, 1, 2.0f);
      Floats probs = output(logits.size()), weights = output(s.tokens * s.topK);
      Ids indices(s.tokens * s.topK);
      cpu::gate(logits.data(), nullptr, s.tokens, s.experts,
                gateConfig(s.topK, false, 1.0, true), probs.data(),
                weights.data(), indices.data());
      Tensor probsT = f32({s.tokens, s.experts}, probs);
      Tensor indicesT = i32({s.tokens, s.topK}, indices);
      float loss = cpu::auxLoss(kind, probs.data(), indices.data(), s.tokens,
                                s.experts, s.topK);
      expectScalarClose(loss, ref::auxLoss(refKind, probsT, indicesT),
                        "auxLoss " + name);
      Floats dProbs = output(probs.size());
      cpu::auxLossGrad(kind, probs.data(), indices.data(), s.tokens, s.experts,
                       s.topK, 0.75f, dProbs.data());
      expectClose(dProbs,
                  ref::auxLossGrad(refKind, probsT, indicesT,
                                   Tensor::scalar(DType::F32, 0.75)),
                  "auxLossGrad " + name, 1e-5);

      Tensor logitsT = f32({s.tokens, s.experts}, logits);
      expectScalarClose(cpu::zLoss(logits.data(), s.tokens, s.experts),
                        ref::zLoss(logitsT), "zLoss " + name);
      Floats dLogits = output(logits.size());
      cpu::zLossGrad(logits.data(), s.tokens, s.experts, -1.5f, dLogits.data());
      expectClose(dLogits,
                  ref::zLossGrad(logitsT, Tensor::scalar(DType::F32, -1.5)),
                  "zLossGrad " + name, 1e-6);
    }
}

//===----------------------------------------------------------------------===//
// Routing metrics
//===----------------------------------------------------------------------===//

TEST(CpuRouterStatisticsTest, RoutingMetricsMatchReference) {
  // 1000 tokens span several reduction chunks.
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({1000, 1, 16, 3, 1});
  for (const Shape &s : shapes) {
    if (s.experts < 3)
      continue;
    std::string name = s.name();
    Floats logits = logitsWithUnderflowingRow(s);
    Floats probs = output(logits.size()), weights = output(s.tokens * s.topK);
    Ids indices(s.tokens * s.topK), slots(s.tokens * s.topK);
    cpu::gate(logits.data(), nullptr, s.tokens, s.experts,
              gateConfig(s.topK, false, 1.0, true), probs.data(),
              weights.data(), indices.data());
    int64_t capacity = std::max<int64_t>(1, s.tokens * s.topK / s.experts / 2);
    Floats buffer(s.experts * capacity);
    std::vector<int64_t> counts(s.experts);
    int64_t dropped = 0;
    cpu::dispatch(Floats(s.tokens, 1.0f).data(), indices.data(), weights.data(),
                  s.tokens, 1, s.topK, s.experts, capacity, buffer.data(),
                  slots.data(), counts.data(), &dropped);

    float dropRate = NAN, max1Max2 = NAN, max2Max3 = NAN;
    std::vector<int64_t> load(s.experts, -7);
    cpu::routingMetrics(probs.data(), indices.data(), slots.data(), s.tokens,
                        s.experts, s.topK, &dropRate, &max1Max2, &max2Max3,
                        load.data());
    ref::RoutingMetrics expected = ref::routingMetrics(
        f32({s.tokens, s.experts}, probs), i32({s.tokens, s.topK}, indices),
        i32({s.tokens, s.topK}, slots), DType::F32);
    expectScalarClose(dropRate, expected.dropRate, "drop rate " + name);
    expectScalarClose(max1Max2, expected.max1Max2, "max1/max2 " + name);
    expectScalarClose(max2Max3, expected.max2Max3, "max2/max3 " + name);
    expectExact(load, expected.load, "load " + name);
    EXPECT_EQ(load, counts) << name;
  }
}

TEST(CpuRouterStatisticsTest, RoutingMetricsCheckKeptIndicesLikeTheReference) {
  Floats probs = {0.5f, 0.3f, 0.2f};
  Ids indices = {0, 7}, kept = {0, 0}, dropped = {0, -1};
  float dropRate, max1Max2, max2Max3;
  std::vector<int64_t> load(3);
  auto run = [&](const Ids &slots) {
    return errorOf([&] {
      cpu::routingMetrics(probs.data(), indices.data(), slots.data(), 1, 3, 2,
                          &dropRate, &max1Max2, &max2Max3, load.data());
    });
  };
  EXPECT_EQ(run(dropped), "");
  EXPECT_EQ(dropRate, 0.5f);
  EXPECT_EQ(load, (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(run(kept), "moe.routing_metrics: expert index 7 is outside [0, 3)");
  EXPECT_EQ(run(kept), errorOf([&] {
              ref::routingMetrics(f32({1, 3}, probs), i32({1, 2}, indices),
                                  i32({1, 2}, kept), DType::F32);
            }));
}
