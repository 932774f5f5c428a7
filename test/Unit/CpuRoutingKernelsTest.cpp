//===- CpuRoutingKernelsTest.cpp - f32 CPU routing kernels ---------------===//
//
// Every routing kernel of moert::cpu against
// the reference kernels (which compute in double) on random f32 inputs of
// several shapes, including sizes that are not multiples of the vector
// widths. Routing decisions (top-k indices, slots, counts, drops, loads) must
// match exactly, ties going to the lower expert or the earlier assignment;
// bad indices throw the reference's message; two runs give bitwise identical
// results (the gate: CpuGateKernelsTest.cpp; the expert kernels:
// CpuExpertKernelsTest.cpp; router losses and routing metrics:
// CpuRouterStatisticsTest.cpp).
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

//===----------------------------------------------------------------------===//
// dispatch
//===----------------------------------------------------------------------===//

// route and place split dispatch: together they are dispatch, and place
// writes zeros where no token goes. Split into parts (the ranks of an
// expert-parallel program), each part placed in its runs and the runs
// merged give dispatch's buffer again; split_runs undoes merge_runs.
TEST(CpuRoutingKernelsTest, RoutePlaceAndRunsMatchReference) {
  for (const Shape &s : kShapes) {
    int64_t fair = (s.tokens * s.topK + s.experts - 1) / s.experts;
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), s.tokens})
      for (int64_t parts : {int64_t(1), int64_t(2), s.tokens}) {
        if (s.tokens % parts != 0)
          continue;
        std::string name = s.name() + " capacity " + std::to_string(capacity) +
                           " parts " + std::to_string(parts);
        int64_t partTokens = s.tokens / parts;
        int64_t runCapacity = std::min(capacity, partTokens);
        Floats tokens = randomFloats(s.tokens * s.hidden, 1);
        Ids indices = randomChoices(s.tokens, s.experts, s.topK, 2);
        Floats priority = randomFloats(s.tokens * s.topK, 4);
        for (const float *rank :
             {static_cast<const float *>(nullptr),
              static_cast<const float *>(priority.data())}) {
          Ids slots(s.tokens * s.topK, -7);
          std::vector<int64_t> counts(parts * s.experts, -7);
          int64_t dropped = -7;
          cpu::route(indices.data(), rank, s.tokens, s.topK, s.experts,
                     capacity, parts, slots.data(), counts.data(), &dropped);
          Tensor indicesRef = i32({s.tokens, s.topK}, indices);
          Tensor priorityRef = f32({s.tokens, s.topK}, priority);
          ref::RouteResult expected =
              ref::route(indicesRef, s.experts, capacity,
                         rank ? &priorityRef : nullptr, parts);
          expectExact(slots, expected.slots, "route slots " + name);
          for (size_t i = 0; i < counts.size(); ++i)
            EXPECT_EQ(counts[i], static_cast<int64_t>(expected.counts.data[i]))
                << "route counts " << name << " at " << i;
          EXPECT_EQ(dropped, static_cast<int64_t>(expected.dropped.data[0]))
              << name;

          // Every part's runs, one block of runCapacity rows per expert.
          int64_t runValues = runCapacity * s.hidden;
          Floats runs = output(parts * s.experts * runValues);
          for (int64_t p = 0; p < parts; ++p)
            cpu::place(tokens.data() + p * partTokens * s.hidden,
                       indices.data() + p * partTokens * s.topK,
                       slots.data() + p * partTokens * s.topK, partTokens,
                       s.hidden, s.topK, s.experts, runCapacity,
                       runs.data() + p * s.experts * runValues);
          Tensor runsRef =
              f32({parts * s.experts, runCapacity, s.hidden}, runs);
          Floats queue = output(s.experts * capacity * s.hidden);
          std::vector<int64_t> queueCounts(s.experts, -7);
          cpu::mergeRuns(runs.data(), counts.data(), parts, s.experts,
                         runCapacity, capacity, s.hidden, queue.data(),
                         queueCounts.data());
          Tensor dispatched =
              ref::dispatch(f32({s.tokens, s.hidden}, tokens), indicesRef,
                            s.experts, capacity, rank ? &priorityRef : nullptr)
                  .buffer;
          expectClose(queue, dispatched, "merged runs " + name, 0.0);
          expectClose(queue, ref::mergeRuns(runsRef, expected.counts, capacity),
                      "mergeRuns " + name, 0.0);
          for (int64_t e = 0; e < s.experts; ++e) {
            int64_t filled = 0;
            for (int64_t p = 0; p < parts; ++p)
              filled += counts[p * s.experts + e];
            EXPECT_EQ(queueCounts[e], filled) << name << " expert " << e;
          }

          Floats split = output(runs.size());
          cpu::splitRuns(queue.data(), counts.data(), parts, s.experts,
                         capacity, runCapacity, s.hidden, split.data());
          expectClose(split, runsRef, "split runs " + name, 0.0);
          expectClose(
              split,
              ref::splitRuns(ref::mergeRuns(runsRef, expected.counts, capacity),
                             expected.counts, runCapacity),
              "splitRuns " + name, 0.0);
        }
      }
  }
}

// A run longer than its block or a queue overflowing its capacity is an
// error, not a write past the buffer.
TEST(CpuRoutingKernelsTest, RunsThatDoNotFitAreErrors) {
  Floats runs(2 * 2 * 3, 1.0f), queue(2 * 4 * 3);
  std::vector<int64_t> queueCounts(2);
  std::vector<int64_t> tooLong = {3, 0, 0, 0}, overflowing = {2, 0, 2, 1};
  EXPECT_THROW(cpu::mergeRuns(runs.data(), tooLong.data(), 2, 2, 2, 4, 3,
                              queue.data(), queueCounts.data()),
               moert::Error);
  EXPECT_THROW(cpu::splitRuns(queue.data(), overflowing.data(), 2, 2, 3, 2, 3,
                              runs.data()),
               moert::Error);
}

TEST(CpuRoutingKernelsTest, DispatchAndGradMatchReference) {
  for (const Shape &s : kShapes) {
    int64_t fair = (s.tokens * s.topK + s.experts - 1) / s.experts;
    // Tight (drops), capacity-factor 1.25 and dropless capacities; 0 drops
    // everything.
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), (fair * 5 + 3) / 4,
                             s.tokens, int64_t(0)}) {
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      Floats tokens = randomFloats(s.tokens * s.hidden, 1);
      Ids indices = randomChoices(s.tokens, s.experts, s.topK, 2);
      Floats buffer = output(s.experts * capacity * s.hidden);
      Ids slots(s.tokens * s.topK, -7);
      std::vector<int64_t> counts(s.experts, -7);
      int64_t dropped = -7;
      cpu::dispatch(tokens.data(), indices.data(), nullptr, s.tokens, s.hidden,
                    s.topK, s.experts, capacity, buffer.data(), slots.data(),
                    counts.data(), &dropped);
      Tensor indicesRef = i32({s.tokens, s.topK}, indices);
      ref::DispatchResult expected = ref::dispatch(
          f32({s.tokens, s.hidden}, tokens), indicesRef, s.experts, capacity);
      expectExact(slots, expected.slots, "dispatch slots " + name);
      EXPECT_EQ(counts, countsOf(indices, slots, s.experts)) << name;
      EXPECT_EQ(dropped, static_cast<int64_t>(expected.dropped.data[0]))
          << name;
      if (capacity == s.tokens) {
        EXPECT_EQ(dropped, 0) << name;
      }
      // The rows past the counts too: zeros.
      expectExact(buffer, expected.buffer, "dispatch buffer " + name);

      Floats dBuffer = randomFloats(s.experts * capacity * s.hidden, 3);
      Floats dTokens = output(s.tokens * s.hidden);
      cpu::dispatchGrad(dBuffer.data(), indices.data(), slots.data(), s.tokens,
                        s.hidden, s.topK, s.experts, capacity, dTokens.data());
      expectClose(
          dTokens,
          ref::dispatchGrad(f32({s.experts, capacity, s.hidden}, dBuffer),
                            indicesRef, expected.slots),
          "dispatchGrad " + name);
    }
  }
}

TEST(CpuRoutingKernelsTest, DispatchQueuesTokenMajorAndDropsPastCapacity) {
  // Every token picks {1, 0}: expert 1 then 0. With capacity 3 tokens 0-2
  // fill both experts in token order and tokens 3-4 are dropped.
  Ids indices = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
  Floats tokens = {10, 11, 12, 13, 14};
  Floats buffer = output(2 * 3);
  Ids slots(10);
  std::vector<int64_t> counts(2);
  int64_t dropped = 0;
  cpu::dispatch(tokens.data(), indices.data(), nullptr, 5, 1, 2, 2, 3,
                buffer.data(), slots.data(), counts.data(), &dropped);
  EXPECT_EQ(slots, (Ids{0, 0, 1, 1, 2, 2, -1, -1, -1, -1}));
  EXPECT_EQ(counts, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(dropped, 4);
  EXPECT_EQ(buffer, (Floats{10, 11, 12, 10, 11, 12}));
}

TEST(CpuRoutingKernelsTest, DispatchByPriorityMatchesReference) {
  for (const Shape &s : kShapes) {
    int64_t fair = (s.tokens * s.topK + s.experts - 1) / s.experts;
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), fair, s.tokens}) {
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      Floats tokens = randomFloats(s.tokens * s.hidden, 1);
      Ids indices = randomChoices(s.tokens, s.experts, s.topK, 2);
      // Priorities in quarters: many ties, which go to the earlier
      // assignment.
      Floats priority = randomFloats(s.tokens * s.topK, 3);
      for (float &value : priority)
        value = std::round(value * 4.0f) / 4.0f;
      Floats buffer = output(s.experts * capacity * s.hidden);
      Ids slots(s.tokens * s.topK, -7);
      std::vector<int64_t> counts(s.experts, -7);
      int64_t dropped = -7;
      cpu::dispatch(tokens.data(), indices.data(), priority.data(), s.tokens,
                    s.hidden, s.topK, s.experts, capacity, buffer.data(),
                    slots.data(), counts.data(), &dropped);
      Tensor priorityT = f32({s.tokens, s.topK}, priority);
      ref::DispatchResult expected = ref::dispatch(
          f32({s.tokens, s.hidden}, tokens), i32({s.tokens, s.topK}, indices),
          s.experts, capacity, &priorityT);
      expectExact(slots, expected.slots, "priority dispatch slots " + name);
      EXPECT_EQ(counts, countsOf(indices, slots, s.experts)) << name;
      EXPECT_EQ(dropped, static_cast<int64_t>(expected.dropped.data[0]))
          << name;
      expectExact(buffer, expected.buffer, "priority dispatch buffer " + name);
    }
  }
}

TEST(CpuRoutingKernelsTest, DispatchByPriorityKeepsHighestTiesToEarlier) {
  // As the reference's hand-worked case: expert 0's assignments a0, a3, a4,
  // a6 have priorities 0.1, 0.6, 0.3, 0.3; capacity 2 keeps a3 and a4 (the
  // earlier of the tie), which take slots 0 and 1.
  Ids indices = {0, 1, 2, 0, 0, 1, 0, 2};
  Floats tokens = {10, 11, 12, 13};
  Floats priority = {0.1f, 0.2f, 0.5f, 0.6f, 0.3f, 0.1f, 0.3f, 0.4f};
  Floats buffer = output(3 * 2);
  Ids slots(8);
  std::vector<int64_t> counts(3);
  int64_t dropped = 0;
  cpu::dispatch(tokens.data(), indices.data(), priority.data(), 4, 1, 2, 3, 2,
                buffer.data(), slots.data(), counts.data(), &dropped);
  EXPECT_EQ(slots, (Ids{-1, 0, 0, 0, 1, 1, -1, 1}));
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(buffer, (Floats{11, 12, 10, 12, 11, 13}));
}

//===----------------------------------------------------------------------===//
// combine
//===----------------------------------------------------------------------===//

TEST(CpuRoutingKernelsTest, CombineAndGradMatchReference) {
  for (const Shape &s : kShapes) {
    int64_t fair = (s.tokens * s.topK + s.experts - 1) / s.experts;
    for (int64_t capacity : {std::max<int64_t>(1, fair / 2), s.tokens}) {
      std::string name = s.name() + " capacity " + std::to_string(capacity);
      Ids indices = randomChoices(s.tokens, s.experts, s.topK, 1);
      Floats tokens = randomFloats(s.tokens * s.hidden, 2);
      Ids slots(s.tokens * s.topK);
      std::vector<int64_t> counts(s.experts);
      int64_t dropped = 0;
      Floats buffer(s.experts * capacity * s.hidden);
      cpu::dispatch(tokens.data(), indices.data(), nullptr, s.tokens, s.hidden,
                    s.topK, s.experts, capacity, buffer.data(), slots.data(),
                    counts.data(), &dropped);
      // A narrowed buffer (moe-narrow-results) is the f32 one rounded, bit
      // for bit (rows past the counts untouched in both).
      Halves narrowedBuffer(buffer.size());
      Ids narrowedSlots(slots.size());
      std::vector<int64_t> narrowedCounts(s.experts);
      int64_t narrowedDropped = 0;
      cpu::dispatch(tokens.data(), indices.data(), nullptr, s.tokens, s.hidden,
                    s.topK, s.experts, capacity, narrowedBuffer.data(),
                    narrowedSlots.data(), narrowedCounts.data(),
                    &narrowedDropped);
      expectBitwiseEqual(narrowedBuffer, narrowed(buffer),
                         "dispatch into bf16 " + name);
      Floats expertOutput = randomFloats(buffer.size(), 3);
      Floats weights = randomFloats(s.tokens * s.topK, 4);
      Tensor outT = f32({s.experts, capacity, s.hidden}, expertOutput);
      Tensor weightsT = f32({s.tokens, s.topK}, weights);
      Tensor indicesT = i32({s.tokens, s.topK}, indices);
      Tensor slotsT = i32({s.tokens, s.topK}, slots);

      Floats y = output(s.tokens * s.hidden);
      cpu::combine(expertOutput.data(), weights.data(), indices.data(),
                   slots.data(), s.tokens, s.topK, s.experts, capacity,
                   s.hidden, y.data());
      expectClose(y, ref::combine(outT, weightsT, indicesT, slotsT),
                  "combine " + name);

      Floats dy = randomFloats(s.tokens * s.hidden, 5);
      Floats dOut = output(buffer.size()), dWeights = output(weights.size());
      cpu::combineGrad(expertOutput.data(), weights.data(), indices.data(),
                       slots.data(), dy.data(), s.tokens, s.topK, s.experts,
                       capacity, s.hidden, dOut.data(), dWeights.data());
      ref::CombineGrads expected = ref::combineGrad(
          outT, weightsT, indicesT, slotsT, f32({s.tokens, s.hidden}, dy));
      // Rows that no kept assignment reads are zero, as in the reference:
      // an expert-parallel program sums them over the ranks.
      expectClose(dOut, expected.dExpertOutput,
                  "combineGrad dExpertOutput " + name);
      expectClose(dWeights, expected.dWeights, "combineGrad dWeights " + name);
      for (size_t i = 0; i < slots.size(); ++i)
        if (slots[i] < 0) {
          EXPECT_EQ(dWeights[i], 0.0f) << name << " dropped " << i;
        }
      // combineGrad of these assignments, with expert outputs and their
      // gradient of any storage type.
      auto gradOf = [&](const auto *out, auto *dExpertOutput,
                        float *dWeightsOut) {
        cpu::combineGrad(out, weights.data(), indices.data(), slots.data(),
                         dy.data(), s.tokens, s.topK, s.experts, capacity,
                         s.hidden, dExpertOutput, dWeightsOut);
      };
      // A narrowed dExpertOutput is the f32 one rounded, bit for bit.
      Halves narrowedDOut(dOut.size());
      Floats narrowedDWeights = output(weights.size());
      gradOf(expertOutput.data(), narrowedDOut.data(), narrowedDWeights.data());
      expectBitwiseEqual(narrowedDOut, narrowed(dOut),
                         "combineGrad into bf16 " + name);
      expectBitwiseEqual(narrowedDWeights, dWeights,
                         "combineGrad dWeights beside bf16 " + name);
      // bf16 expert outputs (the stored activation) give the f32 ones'
      // results for the widened values, bit for bit, into either type.
      Halves stored = narrowed(expertOutput);
      Floats widenedOut = widened(stored);
      Floats dOutOfWidened = output(buffer.size()),
             dWeightsOfWidened = output(weights.size());
      gradOf(widenedOut.data(), dOutOfWidened.data(), dWeightsOfWidened.data());
      Floats dOutOfStored = output(buffer.size()),
             dWeightsOfStored = output(weights.size());
      gradOf(stored.data(), dOutOfStored.data(), dWeightsOfStored.data());
      expectBitwiseEqual(dOutOfStored, dOutOfWidened,
                         "combineGrad of bf16 " + name);
      expectBitwiseEqual(dWeightsOfStored, dWeightsOfWidened,
                         "combineGrad dWeights of bf16 " + name);
      Halves narrowedDOutOfStored(buffer.size());
      gradOf(stored.data(), narrowedDOutOfStored.data(),
             dWeightsOfStored.data());
      expectBitwiseEqual(narrowedDOutOfStored, narrowed(dOutOfWidened),
                         "combineGrad of bf16 into bf16 " + name);
      expectBitwiseEqual(dWeightsOfStored, dWeightsOfWidened,
                         "combineGrad dWeights of bf16 beside bf16 " + name);
    }
  }
}

TEST(CpuRoutingKernelsTest, BadExpertIndicesAndSlotsThrowLikeTheReference) {
  const int64_t tokens = 2, topK = 2, experts = 3, capacity = 2, hidden = 2;
  Floats buffer = randomFloats(experts * capacity * hidden, 1);
  Floats weights = randomFloats(tokens * topK, 2);
  Floats dy = randomFloats(tokens * hidden, 3), out = output(12),
         dWeights = output(4), probs = randomFloats(tokens * experts, 4);
  Tensor bufferT = f32({experts, capacity, hidden}, buffer);
  Tensor weightsT = f32({tokens, topK}, weights);
  struct Case {
    Ids indices, slots;
    std::string dispatchMessage, combineMessage;
  };
  for (const Case &c : {Case{{0, 3, 1, 2},
                             {0, 0, 0, 0},
                             "moe.dispatch: expert index 3",
                             "moe.combine: expert index 3"},
                        Case{{0, -2, 1, 2},
                             {0, 0, 0, 0},
                             "moe.dispatch: expert index -2",
                             "moe.combine: expert index -2"},
                        Case{{0, 1, 1, 2},
                             {0, 0, 2, 0},
                             "moe.dispatch: slot 2",
                             "moe.combine: slot 2"}}) {
    Tensor indicesT = i32({tokens, topK}, c.indices),
           slotsT = i32({tokens, topK}, c.slots);
    std::string message = errorOf([&] {
      cpu::dispatchGrad(buffer.data(), c.indices.data(), c.slots.data(), tokens,
                        hidden, topK, experts, capacity, out.data());
    });
    EXPECT_TRUE(contains(message, c.dispatchMessage)) << message;
    EXPECT_EQ(message,
              errorOf([&] { ref::dispatchGrad(bufferT, indicesT, slotsT); }));
    message = errorOf([&] {
      cpu::combine(buffer.data(), weights.data(), c.indices.data(),
                   c.slots.data(), tokens, topK, experts, capacity, hidden,
                   out.data());
    });
    EXPECT_TRUE(contains(message, c.combineMessage)) << message;
    EXPECT_EQ(message, errorOf([&] {
                ref::combine(bufferT, weightsT, indicesT, slotsT);
              }));
    message = errorOf([&] {
      cpu::combineGrad(buffer.data(), weights.data(), c.indices.data(),
                       c.slots.data(), dy.data(), tokens, topK, experts,
                       capacity, hidden, out.data(), dWeights.data());
    });
    EXPECT_EQ(message, errorOf([&] {
                ref::combineGrad(bufferT, weightsT, indicesT, slotsT,
                                 f32({tokens, hidden}, dy));
              }));
    EXPECT_FALSE(message.empty());
  }
  // A dropped assignment's index is never looked at, like the reference.
  Ids indices = {0, 7, 1, 2}, slots = {0, -1, 0, 0};
  EXPECT_EQ(errorOf([&] {
              cpu::combine(buffer.data(), weights.data(), indices.data(),
                           slots.data(), tokens, topK, experts, capacity,
                           hidden, out.data());
            }),
            "");
  // dispatch checks every index, and so do the aux losses.
  Floats tokensIn = randomFloats(tokens * hidden, 5);
  Ids outSlots(4);
  std::vector<int64_t> counts(experts);
  int64_t dropped = 0;
  EXPECT_EQ(errorOf([&] {
              cpu::dispatch(tokensIn.data(), indices.data(), nullptr, tokens,
                            hidden, topK, experts, capacity, out.data(),
                            outSlots.data(), counts.data(), &dropped);
            }),
            "moe.dispatch: expert index 7 is outside [0, 3)");
  Floats dProbs = output(tokens * experts);
  for (auto kind : {cpu::AuxLossKind::Skywork, cpu::AuxLossKind::Switch}) {
    EXPECT_EQ(errorOf([&] {
                cpu::auxLoss(kind, probs.data(), indices.data(), tokens,
                             experts, topK);
              }),
              "moe.aux_loss: expert index 7 is outside [0, 3)");
    EXPECT_EQ(errorOf([&] {
                cpu::auxLossGrad(kind, probs.data(), indices.data(), tokens,
                                 experts, topK, 1.0f, dProbs.data());
              }),
              "moe.aux_loss: expert index 7 is outside [0, 3)");
  }
}

TEST(CpuRoutingKernelsTest, LargeShapesTakeTheParallelPathsToo) {
  // Big enough (8192 tokens x top-2 x hidden 256, 16 experts) for every
  // routing loop to use the OpenMP team, which small shapes skip.
  const Shape s{8192, 256, 16, 2, 1};
  const int64_t capacity = s.tokens * s.topK * 5 / 4 / s.experts;
  cpu::GateConfig config = gateConfig(s.topK, true, 1.0, true);
  Floats logits = randomFloats(s.tokens * s.experts, 1, 2.0f);
  Floats tokens = randomFloats(s.tokens * s.hidden, 2);
  auto run = [&] {
    std::vector<Floats> outs;
    Floats probs = output(logits.size()), weights = output(s.tokens * s.topK);
    Ids indices(s.tokens * s.topK), slots(s.tokens * s.topK);
    cpu::gate(logits.data(), nullptr, s.tokens, s.experts, config, probs.data(),
              weights.data(), indices.data());
    Tensor indicesT = i32({s.tokens, s.topK}, indices);
    ref::GateResult gate =
        ref::gate(f32({s.tokens, s.experts}, logits), s.topK, 1.0, 1e-6, true);
    expectExact(indices, gate.indices, "large gate indices");
    expectClose(weights, gate.weights, "large gate weights", 1e-6);
    Floats dProbs = randomFloats(probs.size(), 3);
    Floats dLogits = output(logits.size());
    cpu::gateGrad(logits.data(), indices.data(), s.tokens, s.experts, config,
                  dProbs.data(), weights.data(), dLogits.data());
    expectClose(dLogits,
                ref::gateGrad(f32({s.tokens, s.experts}, logits), indicesT, 1.0,
                              1e-6, true, f32({s.tokens, s.experts}, dProbs),
                              f32({s.tokens, s.topK}, weights)),
                "large gateGrad");

    Floats buffer = output(s.experts * capacity * s.hidden);
    std::vector<int64_t> counts(s.experts);
    int64_t dropped = 0;
    cpu::dispatch(tokens.data(), indices.data(), nullptr, s.tokens, s.hidden,
                  s.topK, s.experts, capacity, buffer.data(), slots.data(),
                  counts.data(), &dropped);
    Tensor slotsT = i32({s.tokens, s.topK}, slots);
    ref::DispatchResult expected = ref::dispatch(
        f32({s.tokens, s.hidden}, tokens), indicesT, s.experts, capacity);
    expectExact(slots, expected.slots, "large dispatch slots");
    expectExact(buffer, expected.buffer, "large dispatch buffer");
    Tensor bufferT = f32({s.experts, capacity, s.hidden}, buffer);

    Floats y = output(tokens.size());
    cpu::combine(buffer.data(), weights.data(), indices.data(), slots.data(),
                 s.tokens, s.topK, s.experts, capacity, s.hidden, y.data());
    Tensor weightsT = f32({s.tokens, s.topK}, weights);
    expectClose(y, ref::combine(bufferT, weightsT, indicesT, slotsT),
                "large combine");
    Floats dOut(buffer.size(), 0.0f), dWeights = output(weights.size());
    cpu::combineGrad(buffer.data(), weights.data(), indices.data(),
                     slots.data(), tokens.data(), s.tokens, s.topK, s.experts,
                     capacity, s.hidden, dOut.data(), dWeights.data());
    ref::CombineGrads grads = ref::combineGrad(
        bufferT, weightsT, indicesT, slotsT, f32({s.tokens, s.hidden}, tokens));
    expectClose(dOut, grads.dExpertOutput, "large combineGrad dOut");
    expectClose(dWeights, grads.dWeights, "large combineGrad dWeights");
    Floats dTokens = output(tokens.size());
    cpu::dispatchGrad(dOut.data(), indices.data(), slots.data(), s.tokens,
                      s.hidden, s.topK, s.experts, capacity, dTokens.data());
    expectClose(dTokens,
                ref::dispatchGrad(f32({s.experts, capacity, s.hidden}, dOut),
                                  indicesT, slotsT),
                "large dispatchGrad");
    for (Floats *out :
         {&probs, &weights, &dLogits, &buffer, &y, &dOut, &dWeights, &dTokens})
      outs.push_back(*out);
    return outs;
  };
  std::vector<Floats> first = run(), second = run();
  for (size_t i = 0; i < first.size(); ++i)
    expectBitwiseEqual(first[i], second[i],
                       "large output " + std::to_string(i));
}

//===----------------------------------------------------------------------===//
// Determinism: a run on one thread and one on three, same bits.
//===----------------------------------------------------------------------===//

TEST(CpuRoutingKernelsTest, RunsAreBitwiseReproducibleOnAnyThreadCount) {
  // The benchmark's MoE layer: 768 tokens, hidden 128, 8 experts, top-2,
  // ffn 352, capacity factor 1.25; large enough for the routing loops to
  // use the OpenMP team when it has more than one thread.
  const int64_t tokens = 768, hidden = 128, experts = 8, topK = 2, ffn = 352;
  const int64_t capacity = 240;
  cpu::GateConfig config = gateConfig(topK, true, 1.0, true);
  Floats x = randomFloats(tokens * hidden, 1);
  Floats logits = randomFloats(tokens * experts, 2, 2.0f);
  Floats gateProj = randomFloats(experts * ffn * hidden, 3, 0.1f);
  Floats upProj = randomFloats(experts * ffn * hidden, 4, 0.1f);
  Floats downProj = randomFloats(experts * hidden * ffn, 5, 0.05f);
  Floats dy = randomFloats(tokens * hidden, 6);
  Floats dProbs = randomFloats(tokens * experts, 7);

  // Every output of every kernel; buffers start at zero so that rows left
  // unwritten compare equal.
  auto run = [&] {
    std::vector<Floats> outs;
    auto next = [&](int64_t count) -> float * {
      outs.push_back(Floats(count, 0.0f));
      return outs.back().data();
    };
    float *probs = next(tokens * experts), *weights = next(tokens * topK);
    Ids indices(tokens * topK), slots(tokens * topK);
    cpu::gate(logits.data(), nullptr, tokens, experts, config, probs, weights,
              indices.data());
    std::vector<int64_t> counts(experts);
    int64_t dropped = 0;
    float *buffer = next(experts * capacity * hidden);
    cpu::dispatch(x.data(), indices.data(), nullptr, tokens, hidden, topK,
                  experts, capacity, buffer, slots.data(), counts.data(),
                  &dropped);
    float *expertOut = next(experts * capacity * hidden),
          *projections = next(experts * 2 * capacity * ffn);
    cpu::expertFfn(buffer, gateProj.data(), upProj.data(), downProj.data(),
                   counts.data(), experts, capacity, hidden, ffn, expertOut,
                   projections);
    cpu::combine(expertOut, weights, indices.data(), slots.data(), tokens, topK,
                 experts, capacity, hidden, next(tokens * hidden));
    float *dOut = next(experts * capacity * hidden),
          *dWeights = next(tokens * topK);
    cpu::combineGrad(expertOut, weights, indices.data(), slots.data(),
                     dy.data(), tokens, topK, experts, capacity, hidden, dOut,
                     dWeights);
    float *dBuffer = next(experts * capacity * hidden);
    float *dGate = next(gateProj.size()), *dUp = next(upProj.size());
    cpu::expertFfnGrad(buffer, gateProj.data(), upProj.data(), downProj.data(),
                       projections, dOut, counts.data(), experts, capacity,
                       hidden, ffn, dBuffer, dGate, dUp, next(downProj.size()));
    cpu::dispatchGrad(dBuffer, indices.data(), slots.data(), tokens, hidden,
                      topK, experts, capacity, next(tokens * hidden));
    cpu::gateGrad(logits.data(), indices.data(), tokens, experts, config,
                  dProbs.data(), dWeights, next(tokens * experts));
    for (auto kind : {cpu::AuxLossKind::Skywork, cpu::AuxLossKind::Switch}) {
      next(1)[0] =
          cpu::auxLoss(kind, probs, indices.data(), tokens, experts, topK);
      cpu::auxLossGrad(kind, probs, indices.data(), tokens, experts, topK, 0.5f,
                       next(tokens * experts));
    }
    next(1)[0] = cpu::zLoss(logits.data(), tokens, experts);
    cpu::zLossGrad(logits.data(), tokens, experts, 0.5f,
                   next(tokens * experts));
    outs.push_back(Floats(indices.begin(), indices.end()));
    outs.push_back(Floats(slots.begin(), slots.end()));
    outs.push_back(Floats(counts.begin(), counts.end()));
    outs.push_back({static_cast<float>(dropped)});
    return outs;
  };
  std::vector<Floats> first = onThreads(1, run), second = onThreads(3, run);
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i)
    expectBitwiseEqual(first[i], second[i], "output " + std::to_string(i));
}
