//===- CudaRoutingKernelsTest.cpp - f32 CUDA routing kernels --------------===//
//
// The gate, dispatch (route, place, runs) and combine kernels of moert::cuda
// against the CPU kernels on the same random inputs: routing decisions (top-k
// indices, slots, counts, drops) and copied rows exactly, ties going to the
// lower expert or the earlier assignment (with priorities too, +0 and -0
// tied); gradients and weighted sums within f32 rounding; bad expert indices,
// slots and runs raise the CPU kernels' messages on the next synchronization;
// and two runs give bitwise identical results. The expert FFN and the router
// losses and metrics: CudaExpertKernelsTest.cpp.
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/CudaKernels.h"

#include "Bf16TestUtils.h"
#include "CudaTestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace moe::cudatest;
using moe::test::Halves;
using moe::test::narrowed;
using moe::test::widened;

namespace {

class CudaRoutingKernelsTest : public CudaTest {};

/// The capacity that fits every expert's fair share.
int64_t fairCapacity(const Shape &s) {
  return (s.tokens * s.topK + s.experts - 1) / s.experts;
}

/// What dispatch or route decided, on either target.
struct Decisions {
  Ids slots;
  Longs counts;
  int64_t dropped;
};

void expectSameDecisions(const Decisions &actual, const Decisions &expected,
                         const std::string &what) {
  expectExact(actual.slots, expected.slots, what + " slots");
  expectExact(actual.counts, expected.counts, what + " counts");
  EXPECT_EQ(actual.dropped, expected.dropped) << what << " dropped";
}

/// cpu::dispatch and gpu::dispatch on the same input; the buffers must be
/// equal.
Decisions expectDispatchMatches(const Shape &s, int64_t capacity,
                                const Floats &tokens, const Ids &indices,
                                const Floats *priority,
                                const std::string &what) {
  Floats buffer = output(s.experts * capacity * s.hidden);
  Decisions cpuResult{Ids(s.tokens * s.topK, -7), Longs(s.experts, -7), -7};
  cpu::dispatch(
      tokens.data(), indices.data(), priority ? priority->data() : nullptr,
      s.tokens, s.hidden, s.topK, s.experts, capacity, buffer.data(),
      cpuResult.slots.data(), cpuResult.counts.data(), &cpuResult.dropped);

  DeviceBuffer<float> tokensGpu(tokens),
      priorityGpu(priority ? *priority : Floats());
  DeviceBuffer<int32_t> indicesGpu(indices), slotsGpu(s.tokens * s.topK);
  DeviceBuffer<float> bufferGpu(s.experts * capacity * s.hidden);
  DeviceBuffer<int64_t> countsGpu(s.experts), droppedGpu(1);
  gpu::dispatch(tokensGpu.get(), indicesGpu.get(),
                priority ? priorityGpu.get() : nullptr, s.tokens, s.hidden,
                s.topK, s.experts, capacity, bufferGpu.get(), slotsGpu.get(),
                countsGpu.get(), droppedGpu.get());
  Decisions gpuResult{slotsGpu.download(), countsGpu.download(),
                      droppedGpu.value()};
  expectSameDecisions(gpuResult, cpuResult, what);
  // The rows past the counts too: zeros on both.
  expectClose(bufferGpu.download(), buffer, what + " buffer", 0.0);
  // A narrowed buffer (moe-narrow-results) holds the rows rounded.
  DeviceBuffer<moert::bf16> narrowedGpu(s.experts * capacity * s.hidden);
  gpu::dispatch(tokensGpu.get(), indicesGpu.get(),
                priority ? priorityGpu.get() : nullptr, s.tokens, s.hidden,
                s.topK, s.experts, capacity, narrowedGpu.get(), slotsGpu.get(),
                countsGpu.get(), droppedGpu.get());
  expectClose(moe::test::widened(narrowedGpu.download()),
              moe::test::widened(moe::test::narrowed(buffer)),
              what + " buffer into bf16", 0.0);
  return cpuResult;
}

} // namespace

//===----------------------------------------------------------------------===//
// gate
//===----------------------------------------------------------------------===//

TEST_F(CudaRoutingKernelsTest, GateAndGradMatchCpu) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({8192, 1, 16, 2, 1});
  for (const Shape &s : shapes)
    for (bool normalize : {false, true})
      for (bool renormalize : {false, true})
        for (auto scoring :
             {moert::GateScoring::Softmax, moert::GateScoring::Sigmoid}) {
          bool sigmoid = scoring == moert::GateScoring::Sigmoid;
          std::string name = s.name() + (normalize ? " norm" : "") +
                             (renormalize ? " renorm" : "") +
                             (sigmoid ? " sigmoid, bias, scale" : "");
          moert::GateConfig config =
              gateConfig(s.topK, normalize, normalize ? 2.5 : 1.0, renormalize);
          config.scoring = scoring;
          config.scale = sigmoid ? 2.5 : 1.0;
          // DeepSeek-V3's combination: sigmoid scores with a bias, the
          // weights scaled, the choices from the better half of the experts
          // where the shape has halves to choose from; DeepSeek-V2's:
          // softmax scores not renormalized, the half told by its best.
          if ((sigmoid || !renormalize) && s.experts >= 4 &&
              s.experts % 2 == 0 && s.topK <= s.experts / 2) {
            config.groups = 2;
            config.groupTopK = 1;
            config.groupScoreTop = sigmoid ? 2 : 1;
          }
          Floats logits = randomFloats(s.tokens * s.experts, 1, 2.0f);
          Floats bias = randomFloats(s.experts, 4, 0.2f);
          const float *cpuBias = sigmoid ? bias.data() : nullptr;
          Floats probs = output(s.tokens * s.experts),
                 weights = output(s.tokens * s.topK);
          Ids indices(s.tokens * s.topK, -7);
          cpu::gate(logits.data(), cpuBias, s.tokens, s.experts, config,
                    probs.data(), weights.data(), indices.data());
          DeviceBuffer<float> logitsGpu(logits), biasGpu(bias),
              probsGpu(probs.size()), weightsGpu(weights.size());
          DeviceBuffer<int32_t> indicesGpu(indices.size());
          gpu::gate(logitsGpu.get(), sigmoid ? biasGpu.get() : nullptr,
                    s.tokens, s.experts, config, probsGpu.get(),
                    weightsGpu.get(), indicesGpu.get());
          expectClose(probsGpu.download(), probs, "gate probs " + name, 1e-6);
          expectExact(indicesGpu.download(), indices, "gate indices " + name);
          expectClose(weightsGpu.download(), weights, "gate weights " + name,
                      1e-6);

          Floats dProbs = randomFloats(s.tokens * s.experts, 2),
                 dWeights = randomFloats(s.tokens * s.topK, 3);
          Floats dLogits = output(s.tokens * s.experts);
          cpu::gateGrad(logits.data(), indices.data(), s.tokens, s.experts,
                        config, dProbs.data(), dWeights.data(), dLogits.data());
          DeviceBuffer<float> dProbsGpu(dProbs), dWeightsGpu(dWeights),
              dLogitsGpu(dLogits.size());
          gpu::gateGrad(logitsGpu.get(), indicesGpu.get(), s.tokens, s.experts,
                        config, dProbsGpu.get(), dWeightsGpu.get(),
                        dLogitsGpu.get());
          expectClose(dLogitsGpu.download(), dLogits, "gateGrad " + name);
        }
}

TEST_F(CudaRoutingKernelsTest, ExpertLoadAndBiasUpdateMatchCpu) {
  for (const Shape &s : kShapes) {
    int64_t assignments = s.tokens * s.topK;
    Ids indices(assignments);
    std::mt19937 engine(7);
    for (int32_t &index : indices)
      index = static_cast<int32_t>(engine() % s.experts);
    std::vector<int64_t> load(s.experts);
    cpu::expertLoad(indices.data(), assignments, s.experts, load.data());
    DeviceBuffer<int32_t> indicesGpu(indices);
    DeviceBuffer<int64_t> loadGpu(s.experts);
    gpu::expertLoad(indicesGpu.get(), assignments, s.experts, loadGpu.get());
    EXPECT_EQ(loadGpu.download(), load) << s.name();

    Floats bias = randomFloats(s.experts, 5, 0.1f), updated = output(s.experts);
    cpu::expertBiasUpdate(bias.data(), load.data(), s.experts, 1e-3,
                          updated.data());
    DeviceBuffer<float> biasGpu(bias);
    gpu::expertBiasUpdate(biasGpu.get(), loadGpu.get(), s.experts, 1e-3,
                          biasGpu.get());
    expectExact(biasGpu.download(), updated, "expertBiasUpdate " + s.name());
  }
}

TEST_F(CudaRoutingKernelsTest, GateTiesPickTheLowerExpert) {
  // Equal logits give equal probabilities: the lower index goes first.
  Floats logits = {1,  1, 1, 1,  // all tied: 0, 1
                   0,  2, 2, 2,  // three tied at the top: 1, 2
                   3,  0, 3, -1, // 0, 2
                   -5, 4, 1, 4}; // 1, 3
  DeviceBuffer<float> logitsGpu(logits);
  for (bool normalize : {false, true}) {
    moert::GateConfig config = gateConfig(2, normalize, 1.0, true);
    DeviceBuffer<float> probsGpu(16), weightsGpu(8);
    DeviceBuffer<int32_t> indicesGpu(8);
    gpu::gate(logitsGpu.get(), nullptr, 4, 4, config, probsGpu.get(),
              weightsGpu.get(), indicesGpu.get());
    Ids indices = indicesGpu.download();
    EXPECT_EQ(indices, (Ids{0, 1, 1, 2, 0, 2, 1, 3}));
    Floats weights = weightsGpu.download();
    EXPECT_EQ(weights[0], 0.5f);
    EXPECT_EQ(weights[1], 0.5f);
    Floats cpuProbs = output(16), cpuWeights = output(8);
    Ids cpuIndices(8, -7);
    cpu::gate(logits.data(), nullptr, 4, 4, config, cpuProbs.data(),
              cpuWeights.data(), cpuIndices.data());
    expectExact(indices, cpuIndices, "tied gate indices");
    expectClose(weights, cpuWeights, "tied gate weights", 1e-6);
  }
}

TEST_F(CudaRoutingKernelsTest, GateNormAndGradMatchCpu) {
  for (const Shape &s : gateNormShapes(kShapes)) {
    std::string name = s.name();
    int64_t count = s.tokens * s.experts;
    std::pair<Floats, Floats> inputs = gateNormInputs(s);
    const Floats &logits = inputs.first, &dy = inputs.second;
    Floats y = output(count), dLogits = output(count);
    cpu::gateNorm(logits.data(), s.tokens, s.experts, 2.5, 1e-6, y.data());
    cpu::gateNormGrad(logits.data(), dy.data(), s.tokens, s.experts, 2.5, 1e-6,
                      dLogits.data());
    DeviceBuffer<float> logitsGpu(logits), dyGpu(dy), yGpu(count),
        dLogitsGpu(count);
    gpu::gateNorm(logitsGpu.get(), s.tokens, s.experts, 2.5, 1e-6, yGpu.get());
    gpu::gateNormGrad(logitsGpu.get(), dyGpu.get(), s.tokens, s.experts, 2.5,
                      1e-6, dLogitsGpu.get());
    expectClose(yGpu.download(), y, "gateNorm " + name, 1e-6);
    expectClose(dLogitsGpu.download(), dLogits, "gateNormGrad " + name);
  }
}

//===----------------------------------------------------------------------===//
// dispatch
//===----------------------------------------------------------------------===//

TEST_F(CudaRoutingKernelsTest, DispatchAndGradMatchCpu) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({8192, 64, 16, 2, 1});
  for (const Shape &s : shapes) {
    int64_t fair = fairCapacity(s);
    // Tight (drops), capacity-factor 1.25 and dropless capacities; 0 drops
    // everything.
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), (fair * 5 + 3) / 4,
                             s.tokens, int64_t(0)}) {
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      Floats tokens = randomFloats(s.tokens * s.hidden, 1);
      Ids indices = randomChoices(s.tokens, s.experts, s.topK, 2);
      Decisions decided = expectDispatchMatches(s, capacity, tokens, indices,
                                                nullptr, "dispatch " + name);
      if (capacity == s.tokens) {
        EXPECT_EQ(decided.dropped, 0) << name;
      }

      Floats dBuffer = randomFloats(s.experts * capacity * s.hidden, 3);
      Floats dTokens = output(s.tokens * s.hidden);
      cpu::dispatchGrad(dBuffer.data(), indices.data(), decided.slots.data(),
                        s.tokens, s.hidden, s.topK, s.experts, capacity,
                        dTokens.data());
      DeviceBuffer<float> dBufferGpu(dBuffer), dTokensGpu(dTokens.size());
      DeviceBuffer<int32_t> indicesGpu(indices), slotsGpu(decided.slots);
      gpu::dispatchGrad(dBufferGpu.get(), indicesGpu.get(), slotsGpu.get(),
                        s.tokens, s.hidden, s.topK, s.experts, capacity,
                        dTokensGpu.get());
      expectClose(dTokensGpu.download(), dTokens, "dispatchGrad " + name);
    }
  }
}

TEST_F(CudaRoutingKernelsTest, DispatchByPriorityMatchesCpu) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({8192, 8, 16, 2, 1});
  for (const Shape &s : shapes) {
    int64_t fair = fairCapacity(s);
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), fair, s.tokens}) {
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      Floats tokens = randomFloats(s.tokens * s.hidden, 1);
      Ids indices = randomChoices(s.tokens, s.experts, s.topK, 2);
      // Priorities in quarters: many ties, which go to the earlier
      // assignment, among them -0 and +0.
      Floats priority = randomFloats(s.tokens * s.topK, 3);
      for (float &value : priority)
        value = std::round(value * 4.0f) / 4.0f;
      expectDispatchMatches(s, capacity, tokens, indices, &priority,
                            "priority dispatch " + name);
    }
  }
}

TEST_F(CudaRoutingKernelsTest, DispatchQueuesTokenMajorAndByPriority) {
  // Every token picks {1, 0}: with capacity 3 tokens 0-2 fill both experts
  // in token order and tokens 3-4 are dropped.
  {
    DeviceBuffer<int32_t> indices(Ids{1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
    DeviceBuffer<float> tokens(Floats{10, 11, 12, 13, 14}), buffer(2 * 3);
    DeviceBuffer<int32_t> slots(10);
    DeviceBuffer<int64_t> counts(2), dropped(1);
    gpu::dispatch(tokens.get(), indices.get(), nullptr, 5, 1, 2, 2, 3,
                  buffer.get(), slots.get(), counts.get(), dropped.get());
    EXPECT_EQ(slots.download(), (Ids{0, 0, 1, 1, 2, 2, -1, -1, -1, -1}));
    EXPECT_EQ(counts.download(), (Longs{3, 3}));
    EXPECT_EQ(dropped.value(), 4);
    EXPECT_EQ(buffer.download(), (Floats{10, 11, 12, 10, 11, 12}));
  }
  // Expert 0's assignments a0, a3, a4, a6 have priorities 0.1, 0.6, 0.3,
  // 0.3; capacity 2 keeps a3 and a4 (the earlier of the tie), which take
  // slots 0 and 1.
  {
    DeviceBuffer<int32_t> indices(Ids{0, 1, 2, 0, 0, 1, 0, 2});
    DeviceBuffer<float> tokens(Floats{10, 11, 12, 13});
    DeviceBuffer<float> priority(
        Floats{0.1f, 0.2f, 0.5f, 0.6f, 0.3f, 0.1f, 0.3f, 0.4f});
    DeviceBuffer<float> buffer(3 * 2);
    DeviceBuffer<int32_t> slots(8);
    DeviceBuffer<int64_t> counts(3), dropped(1);
    gpu::dispatch(tokens.get(), indices.get(), priority.get(), 4, 1, 2, 3, 2,
                  buffer.get(), slots.get(), counts.get(), dropped.get());
    EXPECT_EQ(slots.download(), (Ids{-1, 0, 0, 0, 1, 1, -1, 1}));
    EXPECT_EQ(counts.download(), (Longs{2, 2, 2}));
    EXPECT_EQ(dropped.value(), 2);
    EXPECT_EQ(buffer.download(), (Floats{11, 12, 10, 12, 11, 13}));
  }
}

// route and place split dispatch; split into parts (the ranks of an
// expert-parallel program), each part placed in its runs and the runs
// merged give the queues; split_runs undoes merge_runs.
TEST_F(CudaRoutingKernelsTest, RoutePlaceAndRunsMatchCpu) {
  // And 20000 assignments: each of 2 ranks queues more than one chunk.
  std::vector<Shape> shapes = kShapes;
  shapes.push_back({10000, 2, 4, 2, 1});
  for (const Shape &s : shapes) {
    int64_t fair = fairCapacity(s);
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), s.tokens})
      for (int64_t parts : {1, 2, 4}) {
        if (s.tokens % parts != 0)
          continue;
        std::string name = s.name() + " capacity " + std::to_string(capacity) +
                           " parts " + std::to_string(parts);
        int64_t partTokens = s.tokens / parts;
        int64_t runCapacity = std::min(capacity, partTokens);
        Floats tokens = randomFloats(s.tokens * s.hidden, 1);
        Ids indices = randomChoices(s.tokens, s.experts, s.topK, 2);
        Floats priority = randomFloats(s.tokens * s.topK, 4);
        for (float &value : priority)
          value = std::round(value * 4.0f) / 4.0f;
        DeviceBuffer<float> tokensGpu(tokens), priorityGpu(priority);
        DeviceBuffer<int32_t> indicesGpu(indices);
        for (bool byPriority : {false, true}) {
          std::string what = name + (byPriority ? " by priority" : "");
          Decisions expected{Ids(s.tokens * s.topK, -7),
                             Longs(parts * s.experts, -7), -7};
          cpu::route(indices.data(), byPriority ? priority.data() : nullptr,
                     s.tokens, s.topK, s.experts, capacity, parts,
                     expected.slots.data(), expected.counts.data(),
                     &expected.dropped);
          DeviceBuffer<int32_t> slotsGpu(s.tokens * s.topK);
          DeviceBuffer<int64_t> countsGpu(parts * s.experts), droppedGpu(1);
          gpu::route(indicesGpu.get(), byPriority ? priorityGpu.get() : nullptr,
                     s.tokens, s.topK, s.experts, capacity, parts,
                     slotsGpu.get(), countsGpu.get(), droppedGpu.get());
          expectSameDecisions(
              {slotsGpu.download(), countsGpu.download(), droppedGpu.value()},
              expected, "route " + what);

          // Every part's runs, one block of runCapacity rows per expert;
          // place zeroes the rows no token goes to.
          int64_t partValues = s.experts * runCapacity * s.hidden;
          Floats runs = output(parts * partValues);
          DeviceBuffer<float> runsGpu(runs.size());
          for (int64_t p = 0; p < parts; ++p) {
            int64_t tokenOffset = p * partTokens * s.hidden;
            int64_t choiceOffset = p * partTokens * s.topK;
            cpu::place(
                tokens.data() + tokenOffset, indices.data() + choiceOffset,
                expected.slots.data() + choiceOffset, partTokens, s.hidden,
                s.topK, s.experts, runCapacity, runs.data() + p * partValues);
            gpu::place(
                tokensGpu.get() + tokenOffset, indicesGpu.get() + choiceOffset,
                slotsGpu.get() + choiceOffset, partTokens, s.hidden, s.topK,
                s.experts, runCapacity, runsGpu.get() + p * partValues);
          }
          expectClose(runsGpu.download(), runs, "place " + what, 0.0);

          Floats queue = output(s.experts * capacity * s.hidden);
          Longs queueCounts(s.experts, -7);
          cpu::mergeRuns(runs.data(), expected.counts.data(), parts, s.experts,
                         runCapacity, capacity, s.hidden, queue.data(),
                         queueCounts.data());
          DeviceBuffer<float> queueGpu(queue.size());
          DeviceBuffer<int64_t> queueCountsGpu(s.experts);
          gpu::mergeRuns(runsGpu.get(), countsGpu.get(), parts, s.experts,
                         runCapacity, capacity, s.hidden, queueGpu.get(),
                         queueCountsGpu.get());
          expectClose(queueGpu.download(), queue, "mergeRuns " + what, 0.0);
          expectExact(queueCountsGpu.download(), queueCounts,
                      "mergeRuns counts " + what);

          Floats split = output(runs.size());
          cpu::splitRuns(queue.data(), expected.counts.data(), parts, s.experts,
                         capacity, runCapacity, s.hidden, split.data());
          DeviceBuffer<float> splitGpu(split.size());
          gpu::splitRuns(queueGpu.get(), countsGpu.get(), parts, s.experts,
                         capacity, runCapacity, s.hidden, splitGpu.get());
          expectClose(splitGpu.download(), split, "splitRuns " + what, 0.0);
          expectClose(splitGpu.download(), runs, "split runs " + what, 0.0);
        }
      }
  }
}

//===----------------------------------------------------------------------===//
// combine
//===----------------------------------------------------------------------===//

TEST_F(CudaRoutingKernelsTest, CombineAndGradMatchCpu) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({8192, 64, 16, 2, 1});
  for (const Shape &s : shapes) {
    int64_t fair = fairCapacity(s);
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), s.tokens}) {
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      Ids indices = randomChoices(s.tokens, s.experts, s.topK, 1);
      Floats tokens = randomFloats(s.tokens * s.hidden, 2);
      Ids slots(s.tokens * s.topK);
      Longs counts(s.experts);
      int64_t dropped = 0;
      int64_t bufferSize = s.experts * capacity * s.hidden;
      Floats buffer(bufferSize);
      cpu::dispatch(tokens.data(), indices.data(), nullptr, s.tokens, s.hidden,
                    s.topK, s.experts, capacity, buffer.data(), slots.data(),
                    counts.data(), &dropped);
      Floats expertOutput = randomFloats(bufferSize, 3);
      Floats weights = randomFloats(s.tokens * s.topK, 4);
      Floats dy = randomFloats(s.tokens * s.hidden, 5);
      DeviceBuffer<float> expertOutputGpu(expertOutput), weightsGpu(weights),
          dyGpu(dy);
      DeviceBuffer<int32_t> indicesGpu(indices), slotsGpu(slots);

      Floats y = output(s.tokens * s.hidden);
      cpu::combine(expertOutput.data(), weights.data(), indices.data(),
                   slots.data(), s.tokens, s.topK, s.experts, capacity,
                   s.hidden, y.data());
      DeviceBuffer<float> yGpu(y.size());
      gpu::combine(expertOutputGpu.get(), weightsGpu.get(), indicesGpu.get(),
                   slotsGpu.get(), s.tokens, s.topK, s.experts, capacity,
                   s.hidden, yGpu.get());
      expectClose(yGpu.download(), y, "combine " + name);

      Floats dOut = output(bufferSize), dWeights = output(weights.size());
      cpu::combineGrad(expertOutput.data(), weights.data(), indices.data(),
                       slots.data(), dy.data(), s.tokens, s.topK, s.experts,
                       capacity, s.hidden, dOut.data(), dWeights.data());
      DeviceBuffer<float> dOutGpu(bufferSize), dWeightsGpu(weights.size());
      gpu::combineGrad(expertOutputGpu.get(), weightsGpu.get(),
                       indicesGpu.get(), slotsGpu.get(), dyGpu.get(), s.tokens,
                       s.topK, s.experts, capacity, s.hidden, dOutGpu.get(),
                       dWeightsGpu.get());
      // Rows that no kept assignment reads are zero, as on the CPU.
      expectClose(dOutGpu.download(), dOut,
                  "combineGrad dExpertOutput " + name);
      Floats gpuDWeights = dWeightsGpu.download();
      expectClose(gpuDWeights, dWeights, "combineGrad dWeights " + name);
      for (size_t i = 0; i < slots.size(); ++i)
        if (slots[i] < 0) {
          EXPECT_EQ(gpuDWeights[i], 0.0f) << name << " dropped " << i;
        }
      // combineGrad of these assignments on the GPU, with expert outputs
      // and their gradient of any storage type.
      auto gradOf = [&](const auto *out, auto *dExpertOutput,
                        float *dWeightsOut) {
        gpu::combineGrad(out, weightsGpu.get(), indicesGpu.get(),
                         slotsGpu.get(), dyGpu.get(), s.tokens, s.topK,
                         s.experts, capacity, s.hidden, dExpertOutput,
                         dWeightsOut);
      };
      // A narrowed dExpertOutput is the GPU's f32 one rounded, bit for bit.
      DeviceBuffer<moert::bf16> narrowedGpu(bufferSize),
          expectedGpu(bufferSize);
      gradOf(expertOutputGpu.get(), narrowedGpu.get(), dWeightsGpu.get());
      gpu::convert(dOutGpu.get(), bufferSize, expectedGpu.get());
      expectBitwiseEqual(narrowedGpu.download(), expectedGpu.download(),
                         "combineGrad into bf16 " + name);
      // bf16 expert outputs (the stored activation) give the f32 ones'
      // results for the widened values, bit for bit, into either type.
      Halves stored = narrowed(expertOutput);
      DeviceBuffer<moert::bf16> storedGpu(stored);
      DeviceBuffer<float> widenedGpu(widened(stored));
      DeviceBuffer<float> dOutOfStored(bufferSize),
          dWeightsOfStored(weights.size());
      gradOf(storedGpu.get(), dOutOfStored.get(), dWeightsOfStored.get());
      gradOf(widenedGpu.get(), dOutGpu.get(), dWeightsGpu.get());
      expectBitwiseEqual(dOutOfStored.download(), dOutGpu.download(),
                         "combineGrad of bf16 " + name);
      expectBitwiseEqual(dWeightsOfStored.download(), dWeightsGpu.download(),
                         "combineGrad dWeights of bf16 " + name);
      gradOf(storedGpu.get(), narrowedGpu.get(), dWeightsOfStored.get());
      gpu::convert(dOutGpu.get(), bufferSize, expectedGpu.get());
      expectBitwiseEqual(narrowedGpu.download(), expectedGpu.download(),
                         "combineGrad of bf16 into bf16 " + name);
    }
  }
}

//===----------------------------------------------------------------------===//
// Bad indices.
//===----------------------------------------------------------------------===//

TEST_F(CudaRoutingKernelsTest, BadExpertIndexToDispatchRaisesTheCpuMessage) {
  const int64_t tokens = 2, topK = 2, experts = 3, capacity = 2, hidden = 2;
  Floats tokensIn = randomFloats(tokens * hidden, 1);
  Floats buffer(experts * capacity * hidden);
  Ids slots(tokens * topK);
  Longs counts(experts);
  int64_t dropped = 0;
  DeviceBuffer<float> tokensGpu(tokensIn), bufferGpu(buffer.size());
  DeviceBuffer<int32_t> slotsGpu(slots.size());
  DeviceBuffer<int64_t> countsGpu(experts), droppedGpu(1);
  Floats priority = {0.5f, 0.25f, 0.75f, 1.0f};
  DeviceBuffer<float> priorityGpu(priority);
  for (int32_t bad : {7, 3, -2})
    for (bool byPriority : {false, true}) {
      std::string name = "expert index " + std::to_string(bad) +
                         (byPriority ? " by priority" : "");
      Ids indices = {0, bad, 1, 2};
      DeviceBuffer<int32_t> indicesGpu(indices);
      std::string expected = errorOf([&] {
        cpu::dispatch(tokensIn.data(), indices.data(),
                      byPriority ? priority.data() : nullptr, tokens, hidden,
                      topK, experts, capacity, buffer.data(), slots.data(),
                      counts.data(), &dropped);
      });
      EXPECT_EQ(expected, "moe.dispatch: expert index " + std::to_string(bad) +
                              " is outside [0, 3)");
      expectDeviceError(
          [&] {
            gpu::dispatch(tokensGpu.get(), indicesGpu.get(),
                          byPriority ? priorityGpu.get() : nullptr, tokens,
                          hidden, topK, experts, capacity, bufferGpu.get(),
                          slotsGpu.get(), countsGpu.get(), droppedGpu.get());
          },
          expected, "dispatch " + name);
    }
}

TEST_F(CudaRoutingKernelsTest, OtherBadIndicesRaiseTheCpuMessages) {
  const int64_t tokens = 2, topK = 2, experts = 3, capacity = 2, hidden = 2;
  Floats buffer = randomFloats(experts * capacity * hidden, 1);
  Floats weights = randomFloats(tokens * topK, 2);
  Floats dy = randomFloats(tokens * hidden, 3);
  Floats logits = randomFloats(tokens * experts, 4);
  Floats dProbs = randomFloats(tokens * experts, 5);
  Floats out(experts * capacity * hidden), dWeights(tokens * topK);
  DeviceBuffer<float> bufferGpu(buffer), weightsGpu(weights), dyGpu(dy),
      logitsGpu(logits), dProbsGpu(dProbs);
  DeviceBuffer<float> outGpu(out.size()), dWeightsGpu(dWeights.size());
  struct Case {
    Ids indices, slots;
  };
  // A bad expert index, a negative one, a slot past capacity.
  for (const Case &c :
       {Case{{0, 3, 1, 2}, {0, 0, 0, 0}}, Case{{0, -2, 1, 2}, {0, 0, 0, 0}},
        Case{{0, 1, 1, 2}, {0, 0, 2, 0}}}) {
    std::string name = "indices " + std::to_string(c.indices[1]) + " slot " +
                       std::to_string(c.slots[2]);
    DeviceBuffer<int32_t> indicesGpu(c.indices), slotsGpu(c.slots);
    expectDeviceError(
        [&] {
          gpu::dispatchGrad(bufferGpu.get(), indicesGpu.get(), slotsGpu.get(),
                            tokens, hidden, topK, experts, capacity,
                            outGpu.get());
        },
        errorOf([&] {
          cpu::dispatchGrad(buffer.data(), c.indices.data(), c.slots.data(),
                            tokens, hidden, topK, experts, capacity,
                            out.data());
        }),
        "dispatchGrad " + name);
    expectDeviceError(
        [&] {
          gpu::place(dyGpu.get(), indicesGpu.get(), slotsGpu.get(), tokens,
                     hidden, topK, experts, capacity, outGpu.get());
        },
        errorOf([&] {
          cpu::place(dy.data(), c.indices.data(), c.slots.data(), tokens,
                     hidden, topK, experts, capacity, out.data());
        }),
        "place " + name);
    expectDeviceError(
        [&] {
          gpu::combine(bufferGpu.get(), weightsGpu.get(), indicesGpu.get(),
                       slotsGpu.get(), tokens, topK, experts, capacity, hidden,
                       outGpu.get());
        },
        errorOf([&] {
          cpu::combine(buffer.data(), weights.data(), c.indices.data(),
                       c.slots.data(), tokens, topK, experts, capacity, hidden,
                       out.data());
        }),
        "combine " + name);
    expectDeviceError(
        [&] {
          gpu::combineGrad(bufferGpu.get(), weightsGpu.get(), indicesGpu.get(),
                           slotsGpu.get(), dyGpu.get(), tokens, topK, experts,
                           capacity, hidden, outGpu.get(), dWeightsGpu.get());
        },
        errorOf([&] {
          cpu::combineGrad(buffer.data(), weights.data(), c.indices.data(),
                           c.slots.data(), dy.data(), tokens, topK, experts,
                           capacity, hidden, out.data(), dWeights.data());
        }),
        "combineGrad " + name);
    if (c.slots[2] != 0)
      continue; // the index cases only
    moert::GateConfig config = gateConfig(topK, true, 1.0, true);
    expectDeviceError(
        [&] {
          gpu::gateGrad(logitsGpu.get(), indicesGpu.get(), tokens, experts,
                        config, dProbsGpu.get(), weightsGpu.get(),
                        outGpu.get());
        },
        errorOf([&] {
          cpu::gateGrad(logits.data(), c.indices.data(), tokens, experts,
                        config, dProbs.data(), weights.data(), out.data());
        }),
        "gateGrad " + name);
    Ids routeSlots(tokens * topK);
    Longs routeCounts(2 * experts);
    int64_t routeDropped = 0;
    DeviceBuffer<int32_t> routeSlotsGpu(tokens * topK);
    DeviceBuffer<int64_t> routeCountsGpu(2 * experts), routeDroppedGpu(1);
    expectDeviceError(
        [&] {
          gpu::route(indicesGpu.get(), nullptr, tokens, topK, experts, capacity,
                     2, routeSlotsGpu.get(), routeCountsGpu.get(),
                     routeDroppedGpu.get());
        },
        errorOf([&] {
          cpu::route(c.indices.data(), nullptr, tokens, topK, experts, capacity,
                     2, routeSlots.data(), routeCounts.data(), &routeDropped);
        }),
        "route " + name);
  }

  // A dropped assignment's index is never looked at.
  DeviceBuffer<int32_t> indicesGpu(Ids{0, 7, 1, 2}), slotsGpu(Ids{0, -1, 0, 0});
  gpu::combine(bufferGpu.get(), weightsGpu.get(), indicesGpu.get(),
               slotsGpu.get(), tokens, topK, experts, capacity, hidden,
               outGpu.get());
  gpu::dispatchGrad(bufferGpu.get(), indicesGpu.get(), slotsGpu.get(), tokens,
                    hidden, topK, experts, capacity, outGpu.get());
  EXPECT_NO_THROW(synchronize());
}

// A run longer than its block or a queue overflowing its capacity is an
// error, not a write past the buffer.
TEST_F(CudaRoutingKernelsTest, RunsThatDoNotFitRaiseTheCpuMessages) {
  // Runs [2 ranks * 2 experts, 2 rows, hidden 3], queues [2, 4 rows, 3].
  Floats runs(2 * 2 * 2 * 3, 1.0f), queue(2 * 4 * 3, 1.0f);
  Longs queueCounts(2);
  Longs tooLong = {3, 0, 0, 0}, overflowing = {2, 0, 2, 1};
  DeviceBuffer<float> runsGpu(runs), queueGpu(queue);
  DeviceBuffer<int64_t> queueCountsGpu(2), tooLongGpu(tooLong),
      overflowingGpu(overflowing);
  expectDeviceError(
      [&] {
        gpu::mergeRuns(runsGpu.get(), tooLongGpu.get(), 2, 2, 2, 4, 3,
                       queueGpu.get(), queueCountsGpu.get());
      },
      errorOf([&] {
        cpu::mergeRuns(runs.data(), tooLong.data(), 2, 2, 2, 4, 3, queue.data(),
                       queueCounts.data());
      }),
      "mergeRuns");
  // A queue of 3 rows; split back into runs of 2.
  expectDeviceError(
      [&] {
        gpu::splitRuns(queueGpu.get(), overflowingGpu.get(), 2, 2, 3, 2, 3,
                       runsGpu.get());
      },
      errorOf([&] {
        cpu::splitRuns(queue.data(), overflowing.data(), 2, 2, 3, 2, 3,
                       runs.data());
      }),
      "splitRuns");
}

//===----------------------------------------------------------------------===//
// Determinism: two runs, same bits.
//===----------------------------------------------------------------------===//

TEST_F(CudaRoutingKernelsTest, RunsAreBitwiseReproducible) {
  // The benchmark's MoE layer: 768 tokens, hidden 128, 8 experts, top-2,
  // capacity factor 1.25.
  const int64_t tokens = 768, hidden = 128, experts = 8, topK = 2;
  const int64_t capacity = 240, bufferSize = experts * capacity * hidden;
  moert::GateConfig config = gateConfig(topK, true, 1.0, true);
  Floats x = randomFloats(tokens * hidden, 1);
  Floats logits = randomFloats(tokens * experts, 2, 2.0f);
  Floats dy = randomFloats(tokens * hidden, 3);
  Floats dProbs = randomFloats(tokens * experts, 4);
  Floats expertOutput = randomFloats(bufferSize, 5);
  DeviceBuffer<float> xGpu(x), logitsGpu(logits), dyGpu(dy), dProbsGpu(dProbs),
      expertOutputGpu(expertOutput);

  auto run = [&] {
    DeviceBuffer<float> probs(tokens * experts), weights(tokens * topK);
    DeviceBuffer<int32_t> indices(tokens * topK), slots(tokens * topK);
    gpu::gate(logitsGpu.get(), nullptr, tokens, experts, config, probs.get(),
              weights.get(), indices.get());
    DeviceBuffer<float> buffer(bufferSize, 0.0f);
    DeviceBuffer<int64_t> counts(experts), dropped(1);
    gpu::dispatch(xGpu.get(), indices.get(), weights.get(), tokens, hidden,
                  topK, experts, capacity, buffer.get(), slots.get(),
                  counts.get(), dropped.get());
    DeviceBuffer<float> y(tokens * hidden), dOut(bufferSize),
        dWeights(tokens * topK), dTokens(tokens * hidden),
        dLogits(tokens * experts), normalized(tokens * experts),
        dNormalized(tokens * experts);
    gpu::combine(expertOutputGpu.get(), weights.get(), indices.get(),
                 slots.get(), tokens, topK, experts, capacity, hidden, y.get());
    gpu::combineGrad(expertOutputGpu.get(), weights.get(), indices.get(),
                     slots.get(), dyGpu.get(), tokens, topK, experts, capacity,
                     hidden, dOut.get(), dWeights.get());
    gpu::dispatchGrad(dOut.get(), indices.get(), slots.get(), tokens, hidden,
                      topK, experts, capacity, dTokens.get());
    gpu::gateGrad(logitsGpu.get(), indices.get(), tokens, experts, config,
                  dProbsGpu.get(), dWeights.get(), dLogits.get());
    gpu::gateNorm(logitsGpu.get(), tokens, experts, 1.0, 1e-6,
                  normalized.get());
    gpu::gateNormGrad(logitsGpu.get(), dProbsGpu.get(), tokens, experts, 1.0,
                      1e-6, dNormalized.get());
    std::vector<Floats> floats;
    for (const DeviceBuffer<float> *out :
         {&probs, &weights, &buffer, &y, &dOut, &dWeights, &dTokens, &dLogits,
          &normalized, &dNormalized})
      floats.push_back(out->download());
    Longs decisions = counts.download();
    decisions.push_back(dropped.value());
    for (const DeviceBuffer<int32_t> *ints : {&indices, &slots})
      for (int32_t value : ints->download())
        decisions.push_back(value);
    return std::make_pair(floats, decisions);
  };
  auto first = run(), second = run();
  expectRunsBitwiseEqual(first.first, second.first);
  expectExact(first.second, second.second, "routing decisions");
}
