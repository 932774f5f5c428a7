//===- GradientCheckRoutingTest.cpp - routing ops against differences ----===//
//
// moe-autodiff's gradients of the router, gate, dispatch, expert and
// combine ops, the load-balancing losses and expert parallelism's
// placement ops (moe.place, moe.merge_runs, moe.split_runs) against
// central finite differences (GradientCheckUtils.h).
//
//===----------------------------------------------------------------------===//

#include "GradientCheckUtils.h"

#include "moe/MoeDialect.h"

using namespace gradcheck;
using namespace mlir;

namespace {

TEST(GradientCheck, Router) {
  checkCase("router", [](Model &m) { buildAffine(m, "router", false); });
  checkCase("router bias", [](Model &m) { buildAffine(m, "router", true); });
}

TEST(GradientCheck, Gate) {
  // The output uses both differentiable results: probs + weights P^T, so the
  // logits' gradient sums the paths through the scores and the top-k. With
  // norm_lambda the logits start at std 10: z~ does not depend on their
  // scale, so the probabilities are as with std 1, but a step of 1e-4 is 10x
  // smaller relative to each row's std (see kMinLogitStd). Sigmoid scores
  // keep the logits' order, which the probe's margins are taken on; their
  // weights are scaled too (DeepSeek's routed_scaling_factor).
  for (double lambda : {0.0, 1.0, 2.5}) {
    for (bool renormalize : {false, true}) {
      for (bool sigmoid : {false, true}) {
        std::string label =
            "gate" +
            std::string(lambda > 0 ? " norm_lambda " + number(lambda) : "") +
            (renormalize ? " renormalize" : "") +
            (sigmoid ? " sigmoid scale 2.5" : "");
        checkCase(label, [&](Model &m) {
          int64_t tokens = m.dim(), experts = m.dim(lambda > 0 ? 3 : 2, 6),
                  k = m.dim(1, experts);
          Shape probs = {tokens, experts}, weights = {tokens, k};
          m.param("z", probs, lambda > 0 ? 10.0 : 1.0);
          m.emit(
              "%p, %w, %i = moe.gate %z" +
              gateAttrs(k, lambda, renormalize, sigmoid, sigmoid ? 2.5 : 1.0) +
              " : " + typeOf(probs) + " -> " + typeOf(probs) + ", " +
              typeOf(weights) + ", " + i32(weights));
          m.param("proj", {experts, k});
          m.emit("%wp = moe.linear %w, %proj : " + typeOf(weights) + ", " +
                 typeOf({experts, k}) + " -> " + typeOf(probs));
          m.emit("%y = moe.add %p, %wp : " + typeOf(probs));
          m.result("%y", probs);
          m.probe("%z", tokens, experts, k, lambda);
        });
      }
    }
  }
}

TEST(GradientCheck, GateNorm) {
  // Through the mean and the population std of each row, conditioned as the
  // gate with norm_lambda: at least three experts, logits of std 10, and
  // draws with a row's std under kMinLogitStd replaced (the probe with k = 0
  // checks only that).
  for (double lambda : {1.0, 2.5}) {
    checkCase("gate_norm norm_lambda " + number(lambda), [&](Model &m) {
      int64_t tokens = m.dim(), experts = m.dim(3, 6);
      Shape logits = {tokens, experts};
      m.param("z", logits, 10.0);
      m.emit("%zn = moe.gate_norm %z norm_lambda = " + number(lambda) +
             " norm_eps = 1.000000e-03 : " + typeOf(logits));
      m.result("%zn", logits);
      m.probe("%z", tokens, experts, 0, lambda);
    });
  }
}

void buildDispatch(Model &m, bool dropless) {
  int64_t tokens = m.dim(2, 6), hidden = m.dim(), experts = m.dim(2, 5),
          k = m.dim(1, std::min<int64_t>(experts, 3));
  std::vector<int64_t> indices = m.choices(tokens, k, experts);
  int64_t capacity = tokens;
  std::string mode = " dropless";
  m.expectedDrops = 0;
  // With a capacity factor, draw choices and a factor until some assignment
  // is dropped; @dropped checks that the interpreter drops as many.
  while (!dropless && m.expectedDrops == 0) {
    indices = m.choices(tokens, k, experts);
    double factor = m.pick({0.25, 0.5, 0.75, 1.0});
    capacity = moe::expertCapacity(factor, tokens, k, experts);
    std::vector<int64_t> slots = queueSlots(indices, experts, capacity);
    m.expectedDrops = std::count(slots.begin(), slots.end(), -1);
    mode = " capacity_factor = " + number(factor);
  }
  Shape x = {tokens, hidden}, choice = {tokens, k},
        buffer = {experts, capacity, hidden};
  m.param("x", x);
  m.ints("i", choice, indices);
  m.emit("%buf, %slots, %dropped = moe.dispatch %x, %i" + mode + " : " +
         typeOf(x) + ", " + i32(choice) + " -> " + typeOf(buffer) + ", " +
         i32(choice) + ", tensor<i64>");
  m.result("%buf", buffer);
}

TEST(GradientCheck, Dispatch) {
  checkCase("dispatch capacity (drops)",
            [](Model &m) { buildDispatch(m, false); });
  checkCase("dispatch dropless", [](Model &m) { buildDispatch(m, true); });
}

TEST(GradientCheck, ExpertFfn) {
  checkCase("expert_ffn", [](Model &m) {
    int64_t experts = m.dim(1, 4), capacity = m.dim(1, 4), hidden = m.dim(),
            ffn = m.dim();
    Shape in = {experts, capacity, hidden}, up = {experts, ffn, hidden},
          down = {experts, hidden, ffn};
    m.param("x", in);
    m.param("w1", up);
    m.param("w3", up);
    m.param("w2", down);
    m.emit("%y, %proj = moe.expert_ffn %x, %w1, %w3, %w2 : " + typeOf(in) +
           ", " + typeOf(up) + ", " + typeOf(down) + " -> " +
           typeOf({experts, 2, capacity, ffn}));
    m.result("%y", in);
  });
}

TEST(GradientCheck, Combine) {
  checkCase("combine", [](Model &m) {
    int64_t tokens = m.dim(), hidden = m.dim(), experts = m.dim(2, 5),
            k = m.dim(1, std::min<int64_t>(experts, 3)), capacity = m.dim(1, 3);
    std::vector<int64_t> indices = m.choices(tokens, k, experts);
    Shape out = {experts, capacity, hidden}, choice = {tokens, k};
    m.param("out", out);
    m.param("w", choice);
    m.ints("i", choice, indices);
    m.ints("slots", choice, queueSlots(indices, experts, capacity));
    m.emit("%y = moe.combine %out, %w, %i, %slots : " + typeOf(out) + ", " +
           typeOf(choice) + ", " + i32(choice) + ", " + i32(choice) + " -> " +
           typeOf({tokens, hidden}));
    m.result("%y", {tokens, hidden});
  });
}

TEST(GradientCheck, AuxLoss) {
  // The loss is smooth in probs for any values, so probs is a free global.
  for (std::string kind : {"skywork", "switch"}) {
    checkCase("aux_loss " + kind, [&](Model &m) {
      int64_t tokens = m.dim(), experts = m.dim(2, 6), k = m.dim(1, experts);
      Shape probs = {tokens, experts}, choice = {tokens, k};
      m.param("p", probs);
      m.ints("i", choice, m.choices(tokens, k, experts));
      m.emit("%l = moe.aux_loss " + kind + " %p, %i : " + typeOf(probs) + ", " +
             i32(choice) + " -> tensor<f64>");
      m.result("%l", {});
    });
  }
}

TEST(GradientCheck, Place) {
  // Each kept choice's token at its slot, the rest of the buffer zero; a
  // capacity under a queue's length drops that queue's last choices.
  checkCase("place", [](Model &m) {
    int64_t tokens = m.dim(), hidden = m.dim(), experts = m.dim(2, 5),
            k = m.dim(1, std::min<int64_t>(experts, 3)), capacity = m.dim(1, 4);
    std::vector<int64_t> indices = m.choices(tokens, k, experts);
    Shape x = {tokens, hidden}, choice = {tokens, k},
          buffer = {experts, capacity, hidden};
    m.param("x", x);
    m.ints("i", choice, indices);
    m.ints("slots", choice, queueSlots(indices, experts, capacity));
    m.emit("%buf = moe.place %x, %i, %slots : " + typeOf(x) + ", " +
           i32(choice) + " -> " + typeOf(buffer));
    m.result("%buf", buffer);
  });
}

/// Run lengths [ranks, experts] of 0..runCapacity rows, and the capacity of
/// a queue that holds every expert's runs (sometimes a row more).
struct Runs {
  int64_t ranks, experts, runCapacity, capacity, hidden;
  std::vector<int64_t> counts;

  explicit Runs(Model &m)
      : ranks(m.dim(1, 3)), experts(m.dim(1, 4)), runCapacity(m.dim(1, 3)),
        hidden(m.dim(1, 4)) {
    std::vector<int64_t> queued(experts, 0);
    for (int64_t p = 0; p < ranks; ++p)
      for (int64_t e = 0; e < experts; ++e) {
        counts.push_back(m.dim(0, runCapacity));
        queued[e] += counts.back();
      }
    capacity = std::max<int64_t>(
        1, *std::max_element(queued.begin(), queued.end()) + m.dim(0, 1));
  }
  Shape runsShape() const { return {ranks * experts, runCapacity, hidden}; }
  Shape queueShape() const { return {experts, capacity, hidden}; }
  std::string countsType() const { return typeOf({ranks, experts}, "i64"); }
};

TEST(GradientCheck, MergeAndSplitRuns) {
  // Rows past a run's count reach nothing: their gradients are zero.
  checkCase("merge_runs", [](Model &m) {
    Runs runs(m);
    m.param("runs", runs.runsShape());
    m.ints("counts", {runs.ranks, runs.experts}, runs.counts, "i64");
    m.emit(
        "%queue = moe.merge_runs %runs, %counts : " + typeOf(runs.runsShape()) +
        ", " + runs.countsType() + " -> " + typeOf(runs.queueShape()));
    m.result("%queue", runs.queueShape());
  });
  checkCase("split_runs", [](Model &m) {
    Runs runs(m);
    m.param("queue", runs.queueShape());
    m.ints("counts", {runs.ranks, runs.experts}, runs.counts, "i64");
    m.emit("%runs = moe.split_runs %queue, %counts : " +
           typeOf(runs.queueShape()) + ", " + runs.countsType() + " -> " +
           typeOf(runs.runsShape()));
    m.result("%runs", runs.runsShape());
  });
}

TEST(GradientCheck, PooledAuxLoss) {
  // One to three layers of their own token counts, pooled; as in AuxLoss,
  // each layer's probs is a free global.
  checkCase("pooled_aux_loss", [](Model &m) {
    int64_t layers = m.dim(1, 3), experts = m.dim(2, 6), k = m.dim(1, experts);
    std::string probs, indices, probsTypes, indicesTypes;
    for (int64_t l = 0; l < layers; ++l) {
      std::string separator = l ? ", " : "";
      int64_t tokens = m.dim();
      probs += separator + m.param("p" + std::to_string(l), {tokens, experts});
      indices += separator + m.ints("i" + std::to_string(l), {tokens, k},
                                    m.choices(tokens, k, experts));
      probsTypes += separator + typeOf({tokens, experts});
      indicesTypes += separator + i32({tokens, k});
    }
    m.emit("%l = moe.pooled_aux_loss(" + probs + "), (" + indices + ") : (" +
           probsTypes + "), (" + indicesTypes + ") -> tensor<f64>");
    m.result("%l", {});
  });
}

} // namespace
