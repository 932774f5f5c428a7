//===- CudaExpertKernelsTest.cpp - f32 CUDA expert kernels and statistics -===//
//
// The expert FFN (grouped GEMMs that read each expert's row count on the
// device), the experts' similarity, the router losses (Skywork and Switch
// aux losses, the pooled aux loss, z-loss, the adaptive coefficient) and the
// routing metrics of moert::cuda against the CPU kernels on the same random
// inputs: the FFN reads no row past its counts (they hold NaN), lists of
// more layers than one launch takes are pooled, bad indices and counts
// raise the CPU kernels' messages, and two runs give bitwise identical
// results.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/CudaKernels.h"

#include "CudaTestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace moe::cudatest;

namespace {

class CudaExpertKernelsTest : public CudaTest {};
class CudaRouterStatisticsTest : public CudaTest {};

/// A gate's probabilities and choices, as the CPU gate makes them.
struct Routed {
  Floats logits, probs, weights;
  Ids indices;
};
Routed routeTokens(int64_t tokens, int64_t experts, int64_t topK,
                   uint32_t seed) {
  Routed r;
  r.logits = randomFloats(tokens * experts, seed, 2.0f);
  r.probs = output(tokens * experts);
  r.weights = output(tokens * topK);
  r.indices = Ids(tokens * topK, -7);
  cpu::gate(r.logits.data(), nullptr, tokens, experts,
            moert::GateConfig{topK, false, 1.0, 1e-6, true}, r.probs.data(),
            r.weights.data(), r.indices.data());
  return r;
}

/// An expert FFN's inputs: x and dy [experts, capacity, hidden] with NaN
/// past each expert's count, and the three projections.
struct ExpertLayer {
  int64_t experts, capacity, hidden, ffn;
  Longs counts;
  Floats x, dy, gateProj, upProj, downProj;
};

ExpertLayer expertLayer(int64_t experts, int64_t capacity, int64_t hidden,
                        int64_t ffn, Longs counts, uint32_t seed) {
  ExpertLayer l{experts, capacity, hidden, ffn, std::move(counts)};
  int64_t size = experts * capacity * hidden;
  l.x = randomFloats(size, seed);
  l.dy = randomFloats(size, seed + 1);
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t i = (e * capacity + l.counts[e]) * hidden;
         i < (e + 1) * capacity * hidden; ++i)
      l.x[i] = l.dy[i] = NAN;
  float scale = 1.0f / std::sqrt(static_cast<float>(hidden));
  l.gateProj = randomFloats(experts * ffn * hidden, seed + 2, scale);
  l.upProj = randomFloats(experts * ffn * hidden, seed + 3, scale);
  l.downProj = randomFloats(experts * hidden * ffn, seed + 4, scale);
  return l;
}

/// expertFfn and expertFfnGrad on both targets; the GPU's gradient reads
/// the CPU's projections (NaN past the counts), so that each kernel is
/// compared alone.
void expectExpertFfnMatches(const ExpertLayer &l, const std::string &name) {
  int64_t size = l.experts * l.capacity * l.hidden;
  int64_t projectionSize = l.experts * 2 * l.capacity * l.ffn;
  Floats y = output(size), projections = output(projectionSize);
  cpu::expertFfn(l.x.data(), l.gateProj.data(), l.upProj.data(),
                 l.downProj.data(), l.counts.data(), l.experts, l.capacity,
                 l.hidden, l.ffn, y.data(), projections.data());
  DeviceBuffer<float> xGpu(l.x), dyGpu(l.dy), gateGpu(l.gateProj),
      upGpu(l.upProj), downGpu(l.downProj);
  DeviceBuffer<int64_t> countsGpu(l.counts);
  DeviceBuffer<float> yGpu(size), projectionsGpu(projectionSize);
  gpu::expertFfn(xGpu.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                 countsGpu.get(), l.experts, l.capacity, l.hidden, l.ffn,
                 yGpu.get(), projectionsGpu.get());
  expectClose(
      filledRows<float>(yGpu.download(), l.counts, l.capacity, l.hidden),
      filledRows<float>(y, l.counts, l.capacity, l.hidden), "expertFfn " + name,
      kGemmTolerance);
  // Each expert's gate then up projections, [experts, 2, capacity, ffn].
  Longs projectionCounts;
  for (int64_t count : l.counts)
    projectionCounts.insert(projectionCounts.end(), {count, count});
  expectClose(
      filledRows<float>(projectionsGpu.download(), projectionCounts, l.capacity,
                        l.ffn),
      filledRows<float>(projections, projectionCounts, l.capacity, l.ffn),
      "expertFfn projections " + name, kGemmTolerance);

  Floats dx = output(size), dGate = output(l.gateProj.size()),
         dUp = output(l.upProj.size()), dDown = output(l.downProj.size());
  cpu::expertFfnGrad(l.x.data(), l.gateProj.data(), l.upProj.data(),
                     l.downProj.data(), projections.data(), l.dy.data(),
                     l.counts.data(), l.experts, l.capacity, l.hidden, l.ffn,
                     dx.data(), dGate.data(), dUp.data(), dDown.data());
  DeviceBuffer<float> cpuProjectionsGpu(projections);
  DeviceBuffer<float> dxGpu(size), dGateGpu(dGate.size()), dUpGpu(dUp.size()),
      dDownGpu(dDown.size());
  gpu::expertFfnGrad(xGpu.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                     cpuProjectionsGpu.get(), dyGpu.get(), countsGpu.get(),
                     l.experts, l.capacity, l.hidden, l.ffn, dxGpu.get(),
                     dGateGpu.get(), dUpGpu.get(), dDownGpu.get());
  expectClose(
      filledRows<float>(dxGpu.download(), l.counts, l.capacity, l.hidden),
      filledRows<float>(dx, l.counts, l.capacity, l.hidden),
      "expertFfnGrad dx " + name, kGemmTolerance);
  // Complete, and finite: no NaN row was read (an empty expert's are 0).
  expectClose(dGateGpu.download(), dGate, "expertFfnGrad dGate " + name,
              kGemmTolerance);
  expectClose(dUpGpu.download(), dUp, "expertFfnGrad dUp " + name,
              kGemmTolerance);
  expectClose(dDownGpu.download(), dDown, "expertFfnGrad dDown " + name,
              kGemmTolerance);
}

} // namespace

//===----------------------------------------------------------------------===//
// expert FFN
//===----------------------------------------------------------------------===//

TEST_F(CudaExpertKernelsTest, ExpertFfnAndGradMatchCpuOnFilledRows) {
  enum class Fill { Mixed, Empty, Full };
  for (const Shape &s : kShapes)
    for (Fill fill : {Fill::Mixed, Fill::Empty, Fill::Full}) {
      int64_t capacity = expertCapacity(s);
      Longs counts(s.experts, fill == Fill::Full ? capacity : 0);
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      if (fill == Fill::Mixed) {
        counts = mixedFills(s.experts, capacity);
        name += " mixed";
      } else {
        name += fill == Fill::Full ? " full" : " empty";
      }
      expectExpertFfnMatches(
          expertLayer(s.experts, capacity, s.hidden, s.ffn, counts, 1), name);
    }
}

TEST_F(CudaExpertKernelsTest, ExpertFfnSaturatesLikeTheCpu) {
  // Projections far into the sigmoid's tails (|g| up to ~200).
  ExpertLayer l = expertLayer(1, 40, 3, 19, {40}, 1);
  l.x = randomFloats(40 * 3, 10, 30.0f);
  l.gateProj = randomFloats(19 * 3, 11, 2.0f);
  expectExpertFfnMatches(l, "saturated");
}

TEST_F(CudaExpertKernelsTest, BadCountsRaiseTheCpuMessage) {
  // 2 experts of capacity 2, hidden 2, ffn 2; the buffers are padded, so
  // that a kernel that used a bad count would not fault the device.
  const int64_t padded = 64;
  Floats x(padded, 0.0f), w(padded, 0.0f), y(padded), dw(padded), p(padded);
  DeviceBuffer<float> xGpu(x), wGpu(w), yGpu(padded), dwGpu(padded), pGpu(p);
  for (int64_t bad : {3, -1}) {
    Longs counts = {1, bad};
    DeviceBuffer<int64_t> countsGpu(counts);
    std::string expected = errorOf([&] {
      cpu::expertFfn(x.data(), w.data(), w.data(), w.data(), counts.data(), 2,
                     2, 2, 2, y.data(), p.data());
    });
    EXPECT_EQ(expected, "moe.expert_ffn: count " + std::to_string(bad) +
                            " of expert 1 is outside [0, 2]");
    expectDeviceError(
        [&] {
          gpu::expertFfn(xGpu.get(), wGpu.get(), wGpu.get(), wGpu.get(),
                         countsGpu.get(), 2, 2, 2, 2, yGpu.get(), pGpu.get());
        },
        expected, "expertFfn count " + std::to_string(bad));
    expectDeviceError(
        [&] {
          gpu::expertFfnGrad(xGpu.get(), wGpu.get(), wGpu.get(), wGpu.get(),
                             pGpu.get(), xGpu.get(), countsGpu.get(), 2, 2, 2,
                             2, yGpu.get(), dwGpu.get(), dwGpu.get(),
                             dwGpu.get());
        },
        errorOf([&] {
          cpu::expertFfnGrad(x.data(), w.data(), w.data(), w.data(), p.data(),
                             x.data(), counts.data(), 2, 2, 2, 2, y.data(),
                             dw.data(), dw.data(), dw.data());
        }),
        "expertFfnGrad count " + std::to_string(bad));
  }
}

TEST_F(CudaExpertKernelsTest, ExpertSimilarityMatchesCpu) {
  // And 130 experts: Gram matrices of three 64-expert tiles a side.
  std::vector<Shape> shapes = kShapes;
  shapes.push_back({1, 6, 130, 1, 5});
  for (const Shape &s : shapes) {
    if (s.experts < 2)
      continue;
    std::string name = s.name();
    auto [gateProj, upProj, downProj] = similarExperts(s);
    DeviceBuffer<float> gateGpu(gateProj), upGpu(upProj), downGpu(downProj);
    DeviceBuffer<float> resultGpu(1);
    gpu::expertSimilarity(gateGpu.get(), upGpu.get(), downGpu.get(), s.experts,
                          s.ffn, s.hidden, resultGpu.get());
    expectScalarClose(resultGpu.value(),
                      cpu::expertSimilarity(gateProj.data(), upProj.data(),
                                            downProj.data(), s.experts, s.ffn,
                                            s.hidden),
                      "expertSimilarity " + name);
  }
}

//===----------------------------------------------------------------------===//
// Router losses
//===----------------------------------------------------------------------===//

TEST_F(CudaRouterStatisticsTest, AuxAndZLossesAndGradsMatchCpu) {
  // 1000 and 5000 tokens span several 256-token chunks; 9000 experts are
  // more than a block's shared-memory histogram holds.
  for (const Shape &s : {kShapes[0], kShapes[2], kShapes[4], kShapes[5],
                         kShapes[8], Shape{1000, 1, 16, 3, 1},
                         Shape{5000, 1, 64, 6, 1}, Shape{300, 1, 9000, 2, 1}}) {
    Routed r = routeTokens(s.tokens, s.experts, s.topK, 1);
    DeviceBuffer<float> logitsGpu(r.logits), probsGpu(r.probs);
    DeviceBuffer<int32_t> indicesGpu(r.indices);
    for (auto kind :
         {moert::AuxLossKind::Skywork, moert::AuxLossKind::Switch}) {
      std::string name =
          s.name() +
          (kind == moert::AuxLossKind::Skywork ? " skywork" : " switch");
      DeviceBuffer<float> lossGpu(1);
      gpu::auxLoss(kind, probsGpu.get(), indicesGpu.get(), s.tokens, s.experts,
                   s.topK, lossGpu.get());
      expectScalarClose(lossGpu.value(),
                        cpu::auxLoss(kind, r.probs.data(), r.indices.data(),
                                     s.tokens, s.experts, s.topK),
                        "auxLoss " + name);
      Floats dProbs = output(r.probs.size());
      cpu::auxLossGrad(kind, r.probs.data(), r.indices.data(), s.tokens,
                       s.experts, s.topK, 0.75f, dProbs.data());
      DeviceBuffer<float> dLossGpu = scalar(0.75f), dProbsGpu(dProbs.size());
      gpu::auxLossGrad(kind, probsGpu.get(), indicesGpu.get(), s.tokens,
                       s.experts, s.topK, dLossGpu.get(), dProbsGpu.get());
      expectClose(dProbsGpu.download(), dProbs, "auxLossGrad " + name);
    }

    std::string name = s.name();
    DeviceBuffer<float> zGpu(1);
    gpu::zLoss(logitsGpu.get(), s.tokens, s.experts, zGpu.get());
    expectScalarClose(zGpu.value(),
                      cpu::zLoss(r.logits.data(), s.tokens, s.experts),
                      "zLoss " + name);
    Floats dLogits = output(r.logits.size());
    cpu::zLossGrad(r.logits.data(), s.tokens, s.experts, -1.5f, dLogits.data());
    DeviceBuffer<float> dLossGpu = scalar(-1.5f), dLogitsGpu(dLogits.size());
    gpu::zLossGrad(logitsGpu.get(), s.tokens, s.experts, dLossGpu.get(),
                   dLogitsGpu.get());
    expectClose(dLogitsGpu.download(), dLogits, "zLossGrad " + name);
  }
}

TEST_F(CudaRouterStatisticsTest, PooledAuxLossByHand) {
  // Layers of 2 and 1 tokens, 2 experts, top-1: N = 3 pooled tokens,
  // c = (2, 1) choices, S = (1.8, 1.2); loss = 2 ((2/3)(1.8/3) +
  // (1/3)(1.2/3)) = 16/15, d/dp_j = 2 c_j / 9.
  DeviceBuffer<float> p0(Floats{0.6f, 0.4f, 0.3f, 0.7f}),
      p1(Floats{0.9f, 0.1f});
  DeviceBuffer<int32_t> i0(Ids{0, 1}), i1(Ids{0});
  const float *probs[] = {p0.get(), p1.get()};
  const int32_t *indices[] = {i0.get(), i1.get()};
  int64_t assignments[] = {2, 1};
  DeviceBuffer<float> lossGpu(1);
  gpu::pooledAuxLoss(probs, indices, assignments, 2, 2, 1, lossGpu.get());
  EXPECT_NEAR(lossGpu.value(), 16.0 / 15.0, 1e-6);
  DeviceBuffer<float> d0(4), d1(2), dLoss = scalar(1.0f);
  float *dProbs[] = {d0.get(), d1.get()};
  gpu::pooledAuxLossGrad(indices, assignments, 2, 2, 1, dLoss.get(), dProbs);
  for (const DeviceBuffer<float> *grad : {&d0, &d1}) {
    Floats values = grad->download();
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_NEAR(values[i], i % 2 == 0 ? 4.0 / 9.0 : 2.0 / 9.0, 1e-7);
  }
}

TEST_F(CudaRouterStatisticsTest, PooledAuxLossAndGradMatchCpu) {
  // 8 experts, top-2; layers of 40 to 339 tokens (one or two 256-token
  // chunks); 70 layers are more than one launch's list of 64.
  const int64_t experts = 8, topK = 2;
  for (int64_t layers : {1, 3, 70}) {
    std::string name = std::to_string(layers) + " layers";
    std::vector<Routed> routed;
    std::vector<DeviceBuffer<float>> probsGpu;
    std::vector<DeviceBuffer<int32_t>> indicesGpu;
    std::vector<DeviceBuffer<float>> dProbsGpu;
    probsGpu.reserve(layers);
    indicesGpu.reserve(layers);
    dProbsGpu.reserve(layers);
    std::vector<const float *> probs, probsOnGpu;
    std::vector<const int32_t *> indices, indicesOnGpu;
    std::vector<float *> dProbsOnGpu;
    std::vector<Floats> dProbs;
    Longs assignments;
    for (int64_t layer = 0; layer < layers; ++layer) {
      int64_t tokens = 40 + (layer * 37) % 300;
      routed.push_back(routeTokens(tokens, experts, topK,
                                   static_cast<uint32_t>(10 + layer)));
      assignments.push_back(tokens * topK);
      dProbs.push_back(output(tokens * experts));
    }
    for (int64_t layer = 0; layer < layers; ++layer) {
      probs.push_back(routed[layer].probs.data());
      indices.push_back(routed[layer].indices.data());
      probsGpu.emplace_back(routed[layer].probs);
      indicesGpu.emplace_back(routed[layer].indices);
      dProbsGpu.emplace_back(dProbs[layer].size());
      probsOnGpu.push_back(probsGpu.back().get());
      indicesOnGpu.push_back(indicesGpu.back().get());
      dProbsOnGpu.push_back(dProbsGpu.back().get());
    }
    DeviceBuffer<float> lossGpu(1);
    gpu::pooledAuxLoss(probsOnGpu.data(), indicesOnGpu.data(),
                       assignments.data(), layers, experts, topK,
                       lossGpu.get());
    expectScalarClose(lossGpu.value(),
                      cpu::pooledAuxLoss(probs.data(), indices.data(),
                                         assignments.data(), layers, experts,
                                         topK),
                      "pooledAuxLoss " + name);

    std::vector<float *> dProbsOnCpu;
    for (Floats &grad : dProbs)
      dProbsOnCpu.push_back(grad.data());
    cpu::pooledAuxLossGrad(indices.data(), assignments.data(), layers, experts,
                           topK, 0.75f, dProbsOnCpu.data());
    DeviceBuffer<float> dLossGpu = scalar(0.75f);
    gpu::pooledAuxLossGrad(indicesOnGpu.data(), assignments.data(), layers,
                           experts, topK, dLossGpu.get(), dProbsOnGpu.data());
    for (int64_t layer = 0; layer < layers; ++layer)
      expectClose(dProbsGpu[layer].download(), dProbs[layer],
                  "pooledAuxLossGrad " + name + " layer " +
                      std::to_string(layer),
                  1e-6);
  }
}

TEST_F(CudaRouterStatisticsTest, AdaptiveAuxCoeffMatchesCpu) {
  struct Case {
    float alpha;
    int64_t dropped, assignments;
    double xi, alphaMax, beta;
  };
  // No drops; below and past the cap; every assignment dropped; beta 0.
  for (Case c :
       {Case{0.0f, 0, 1000, 0.5, 0.1, 0.9}, Case{0.01f, 7, 1000, 0.5, 0.1, 0.9},
        Case{0.5f, 400, 1000, 0.5, 0.1, 0.9},
        Case{0.02f, 1536, 1536, 10.0, 0.05, 0.0},
        Case{1e-3f, 3, 1536, 2.0, 1.0, 0.99}}) {
    std::string name = "alpha " + std::to_string(c.alpha) + " dropped " +
                       std::to_string(c.dropped);
    DeviceBuffer<float> alphaGpu = scalar(c.alpha), resultGpu(1);
    DeviceBuffer<int64_t> droppedGpu = scalar(c.dropped);
    gpu::adaptiveAuxCoeff(alphaGpu.get(), droppedGpu.get(), c.assignments, c.xi,
                          c.alphaMax, c.beta, resultGpu.get());
    expectScalarClose(resultGpu.value(),
                      cpu::adaptiveAuxCoeff(c.alpha, c.dropped, c.assignments,
                                            c.xi, c.alphaMax, c.beta),
                      "adaptiveAuxCoeff " + name, 1e-6);
  }
}

//===----------------------------------------------------------------------===//
// Routing metrics
//===----------------------------------------------------------------------===//

TEST_F(CudaRouterStatisticsTest, RoutingMetricsMatchCpu) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({1000, 1, 16, 3, 1});
  shapes.push_back({5000, 1, 64, 6, 1});
  for (const Shape &s : shapes) {
    if (s.experts < 3)
      continue;
    std::string name = s.name();
    Floats logits = logitsWithUnderflowingRow(s);
    Floats probs = output(logits.size()), weights = output(s.tokens * s.topK);
    Ids indices(s.tokens * s.topK), slots(s.tokens * s.topK);
    cpu::gate(logits.data(), nullptr, s.tokens, s.experts,
              moert::GateConfig{s.topK, false, 1.0, 1e-6, true}, probs.data(),
              weights.data(), indices.data());
    // Half the fair capacity: drops.
    int64_t capacity = std::max<int64_t>(1, s.tokens * s.topK / s.experts / 2);
    Floats buffer(s.experts * capacity);
    Longs counts(s.experts);
    int64_t dropped = 0;
    cpu::dispatch(Floats(s.tokens, 1.0f).data(), indices.data(), weights.data(),
                  s.tokens, 1, s.topK, s.experts, capacity, buffer.data(),
                  slots.data(), counts.data(), &dropped);

    float dropRate = NAN, max1Max2 = NAN, max2Max3 = NAN;
    Longs load(s.experts, -7);
    cpu::routingMetrics(probs.data(), indices.data(), slots.data(), s.tokens,
                        s.experts, s.topK, &dropRate, &max1Max2, &max2Max3,
                        load.data());
    DeviceBuffer<float> probsGpu(probs);
    DeviceBuffer<int32_t> indicesGpu(indices), slotsGpu(slots);
    DeviceBuffer<float> dropRateGpu(1), max1Max2Gpu(1), max2Max3Gpu(1);
    DeviceBuffer<int64_t> loadGpu(s.experts);
    gpu::routingMetrics(probsGpu.get(), indicesGpu.get(), slotsGpu.get(),
                        s.tokens, s.experts, s.topK, dropRateGpu.get(),
                        max1Max2Gpu.get(), max2Max3Gpu.get(), loadGpu.get());
    expectScalarClose(dropRateGpu.value(), dropRate, "drop rate " + name);
    expectScalarClose(max1Max2Gpu.value(), max1Max2, "max1/max2 " + name);
    expectScalarClose(max2Max3Gpu.value(), max2Max3, "max2/max3 " + name);
    Longs gpuLoad = loadGpu.download();
    expectExact(gpuLoad, load, "load " + name);
    expectExact(gpuLoad, counts, "load vs dispatch counts " + name);
  }
}

//===----------------------------------------------------------------------===//
// Bad indices
//===----------------------------------------------------------------------===//

TEST_F(CudaRouterStatisticsTest, BadExpertIndicesRaiseTheCpuMessages) {
  const int64_t tokens = 2, experts = 3, topK = 2;
  Floats probs = randomFloats(tokens * experts, 1);
  Ids indices = {0, 7, 1, 2};
  Floats dProbs = output(tokens * experts);
  DeviceBuffer<float> probsGpu(probs), dProbsGpu(dProbs.size()), resultGpu(1);
  DeviceBuffer<float> dLossGpu = scalar(1.0f);
  DeviceBuffer<int32_t> indicesGpu(indices);
  for (auto kind : {moert::AuxLossKind::Skywork, moert::AuxLossKind::Switch}) {
    expectDeviceError(
        [&] {
          gpu::auxLoss(kind, probsGpu.get(), indicesGpu.get(), tokens, experts,
                       topK, resultGpu.get());
        },
        errorOf([&] {
          cpu::auxLoss(kind, probs.data(), indices.data(), tokens, experts,
                       topK);
        }),
        "auxLoss");
    expectDeviceError(
        [&] {
          gpu::auxLossGrad(kind, probsGpu.get(), indicesGpu.get(), tokens,
                           experts, topK, dLossGpu.get(), dProbsGpu.get());
        },
        errorOf([&] {
          cpu::auxLossGrad(kind, probs.data(), indices.data(), tokens, experts,
                           topK, 1.0f, dProbs.data());
        }),
        "auxLossGrad");
  }

  // Pooled: the second of two layers is bad.
  Ids good = {0, 1, 2, 0};
  DeviceBuffer<int32_t> goodGpu(good);
  const float *probsList[] = {probs.data(), probs.data()};
  const float *probsListGpu[] = {probsGpu.get(), probsGpu.get()};
  const int32_t *indicesList[] = {good.data(), indices.data()};
  const int32_t *indicesListGpu[] = {goodGpu.get(), indicesGpu.get()};
  int64_t assignments[] = {tokens * topK, tokens * topK};
  Floats dProbs1 = output(tokens * experts);
  float *dProbsList[] = {dProbs.data(), dProbs1.data()};
  DeviceBuffer<float> dProbs1Gpu(dProbs1.size());
  float *dProbsListGpu[] = {dProbsGpu.get(), dProbs1Gpu.get()};
  expectDeviceError(
      [&] {
        gpu::pooledAuxLoss(probsListGpu, indicesListGpu, assignments, 2,
                           experts, topK, resultGpu.get());
      },
      errorOf([&] {
        cpu::pooledAuxLoss(probsList, indicesList, assignments, 2, experts,
                           topK);
      }),
      "pooledAuxLoss");
  expectDeviceError(
      [&] {
        gpu::pooledAuxLossGrad(indicesListGpu, assignments, 2, experts, topK,
                               dLossGpu.get(), dProbsListGpu);
      },
      errorOf([&] {
        cpu::pooledAuxLossGrad(indicesList, assignments, 2, experts, topK, 1.0f,
                               dProbsList);
      }),
      "pooledAuxLossGrad");

  // Routing metrics look at kept assignments only.
  Floats metricsProbs = {0.5f, 0.3f, 0.2f};
  Ids metricsIndices = {0, 7};
  DeviceBuffer<float> metricsProbsGpu(metricsProbs), dropRateGpu(1),
      max1Max2Gpu(1), max2Max3Gpu(1);
  DeviceBuffer<int32_t> metricsIndicesGpu(metricsIndices);
  DeviceBuffer<int64_t> loadGpu(3);
  auto metrics = [&](const DeviceBuffer<int32_t> &slots) {
    gpu::routingMetrics(metricsProbsGpu.get(), metricsIndicesGpu.get(),
                        slots.get(), 1, 3, 2, dropRateGpu.get(),
                        max1Max2Gpu.get(), max2Max3Gpu.get(), loadGpu.get());
  };
  DeviceBuffer<int32_t> droppedSlots(Ids{0, -1}), keptSlots(Ids{0, 0});
  metrics(droppedSlots);
  EXPECT_EQ(dropRateGpu.value(), 0.5f);
  EXPECT_EQ(loadGpu.download(), (Longs{1, 0, 0}));
  Ids kept = {0, 0};
  float dropRate, max1Max2, max2Max3;
  Longs load(3);
  expectDeviceError([&] { metrics(keptSlots); }, errorOf([&] {
                      cpu::routingMetrics(metricsProbs.data(),
                                          metricsIndices.data(), kept.data(), 1,
                                          3, 2, &dropRate, &max1Max2, &max2Max3,
                                          load.data());
                    }),
                    "routingMetrics");
}

//===----------------------------------------------------------------------===//
// Determinism: two runs, same bits.
//===----------------------------------------------------------------------===//

TEST_F(CudaExpertKernelsTest, RunsAreBitwiseReproducible) {
  // The benchmark's experts: 8 of capacity 240, hidden 128, ffn 352, filled
  // to random levels, one empty and one full.
  const int64_t experts = 8, capacity = 240, hidden = 128, ffn = 352;
  const int64_t tokens = 768, topK = 2;
  Longs counts = {0, capacity, 17, 200, 239, 1, 120, 64};
  ExpertLayer l = expertLayer(experts, capacity, hidden, ffn, counts, 1);
  Routed r = routeTokens(tokens, experts, topK, 2);
  DeviceBuffer<float> xGpu(l.x), dyGpu(l.dy), gateGpu(l.gateProj),
      upGpu(l.upProj), downGpu(l.downProj);
  DeviceBuffer<int64_t> countsGpu(counts);
  DeviceBuffer<float> probsGpu(r.probs), logitsGpu(r.logits);
  DeviceBuffer<int32_t> indicesGpu(r.indices);
  DeviceBuffer<float> dLossGpu = scalar(0.5f);

  auto run = [&] {
    std::vector<DeviceBuffer<float>> outs;
    outs.reserve(16);
    auto next = [&](int64_t count) -> float * {
      // Zero, so that rows left unwritten compare equal.
      outs.emplace_back(count, 0.0f);
      return outs.back().get();
    };
    float *y = next(l.x.size()),
          *projections = next(experts * 2 * capacity * ffn);
    gpu::expertFfn(xGpu.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                   countsGpu.get(), experts, capacity, hidden, ffn, y,
                   projections);
    float *dx = next(l.x.size()), *dGate = next(l.gateProj.size()),
          *dUp = next(l.upProj.size());
    gpu::expertFfnGrad(xGpu.get(), gateGpu.get(), upGpu.get(), downGpu.get(),
                       projections, dyGpu.get(), countsGpu.get(), experts,
                       capacity, hidden, ffn, dx, dGate, dUp,
                       next(l.downProj.size()));
    for (auto kind :
         {moert::AuxLossKind::Skywork, moert::AuxLossKind::Switch}) {
      gpu::auxLoss(kind, probsGpu.get(), indicesGpu.get(), tokens, experts,
                   topK, next(1));
      gpu::auxLossGrad(kind, probsGpu.get(), indicesGpu.get(), tokens, experts,
                       topK, dLossGpu.get(), next(tokens * experts));
    }
    gpu::zLoss(logitsGpu.get(), tokens, experts, next(1));
    gpu::zLossGrad(logitsGpu.get(), tokens, experts, dLossGpu.get(),
                   next(tokens * experts));
    gpu::expertSimilarity(gateGpu.get(), upGpu.get(), downGpu.get(), experts,
                          ffn, hidden, next(1));
    return downloadAll(outs);
  };
  std::vector<Floats> first = run(), second = run();
  expectRunsBitwiseEqual(first, second);
}
