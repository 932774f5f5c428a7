//===- RoutingKernels.cpp - reference routing, expert and aux-loss ops ----===//
//
// The Skywork-MoE semantics of DESIGN.md section 2, spelled out loop by loop.
//
//===----------------------------------------------------------------------===//

#include "KernelUtils.h"
#include "moe/Interpreter/ReferenceKernels.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>

using namespace mlir::moe::ref;
using mlir::moe::ref::detail::checkedIndex;
using mlir::moe::ref::detail::forEachKeptAssignment;
using mlir::moe::ref::detail::logSumExp;
using mlir::moe::ref::detail::normalizeRow;

namespace {

/// DeepSeek's group-limited routing on one token's keys: each of the
/// `groups` groups of consecutive experts is scored by the sum of its
/// `scoreTop` largest keys (V3's 2, V2's 1; rounded to the keys' type), and
/// the keys outside the `groupTopK` best groups (ties to the lower group)
/// become -inf, so that no choice falls there.
void keepBestGroups(Tensor &keys, int64_t groups, int64_t groupTopK,
                    int64_t scoreTop) {
  int64_t experts = keys.dim(0), size = experts / groups;
  Tensor groupKeys{keys.dtype, {groups}, {}};
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<double> group(keys.data.begin() + g * size,
                              keys.data.begin() + (g + 1) * size);
    std::partial_sort(group.begin(), group.begin() + scoreTop, group.end(),
                      std::greater<double>());
    groupKeys.data.push_back(
        std::accumulate(group.begin(), group.begin() + scoreTop, 0.0));
  }
  groupKeys.roundToDType();
  std::vector<int64_t> order(groups);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return groupKeys.data[a] > groupKeys.data[b];
  });
  for (int64_t rank = groupTopK; rank < groups; ++rank)
    for (int64_t e = order[rank] * size; e < (order[rank] + 1) * size; ++e)
      keys.data[e] = -std::numeric_limits<double>::infinity();
}

} // namespace

GateResult mlir::moe::ref::gate(const Tensor &logits, int64_t topK,
                                std::optional<double> normLambda,
                                double normEps, bool renormalize,
                                moert::GateScoring scoring, const Tensor *bias,
                                double scale, int64_t groups, int64_t groupTopK,
                                int64_t groupScoreTop) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  GateResult result{Tensor::zeros(logits.dtype, {tokens, experts}),
                    Tensor::zeros(logits.dtype, {tokens, topK}),
                    Tensor::zeros(DType::I32, {tokens, topK})};
  std::vector<double> z(experts), centered(experts);
  std::vector<int64_t> order(experts);
  for (int64_t t = 0; t < tokens; ++t) {
    const double *row = &logits.data[t * experts];
    if (normLambda)
      normalizeRow(row, experts, *normLambda, normEps, centered.data(),
                   z.data());
    else
      z.assign(row, row + experts);
    Tensor scores{logits.dtype, {experts}, {}};
    double total = 0;
    if (scoring == moert::GateScoring::Softmax) {
      double normalizer = logSumExp(z.data(), experts);
      for (int64_t e = 0; e < experts; ++e)
        scores.data.push_back(std::exp(z[e] - normalizer));
      total = 1;
    } else {
      for (int64_t e = 0; e < experts; ++e)
        total += scores.data.emplace_back(1.0 / (1.0 + std::exp(-z[e])));
      // Every score underflowed (logits below about -745): all are 0.
      if (total == 0)
        total = 1;
    }
    double *probs = &result.probs.data[t * experts];
    for (int64_t e = 0; e < experts; ++e)
      probs[e] = scores.data[e] / total;
    // Select on the scores as stored, plus the bias (the sum rounded too),
    // so that ties are ties in the tensor's own precision; stable sorting
    // favours the lower index.
    scores.roundToDType();
    Tensor keys = scores;
    if (bias) {
      for (int64_t e = 0; e < experts; ++e)
        keys.data[e] += bias->data[e];
      keys.roundToDType();
    }
    if (groups > 1)
      keepBestGroups(keys, groups, groupTopK, groupScoreTop);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return keys.data[a] > keys.data[b];
    });
    double selected = 0;
    for (int64_t c = 0; c < topK; ++c)
      selected += scores.data[order[c]];
    // Chosen scores that all rounded to 0 weigh 0.
    if (selected == 0)
      selected = 1;
    for (int64_t c = 0; c < topK; ++c) {
      result.indices.data[t * topK + c] = static_cast<double>(order[c]);
      result.weights.data[t * topK + c] =
          scores.data[order[c]] / (renormalize ? selected : 1.0) * scale;
    }
  }
  result.probs.roundToDType();
  return result;
}

Tensor mlir::moe::ref::gateNorm(const Tensor &logits, double normLambda,
                                double normEps) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  Tensor result = Tensor::zeros(logits.dtype, logits.shape);
  std::vector<double> centered(experts);
  for (int64_t t = 0; t < tokens; ++t)
    normalizeRow(&logits.data[t * experts], experts, normLambda, normEps,
                 centered.data(), &result.data[t * experts]);
  return result;
}

RouteResult mlir::moe::ref::route(const Tensor &indices, int64_t numExperts,
                                  int64_t capacity, const Tensor *priority,
                                  int64_t ranks) {
  int64_t assignments = indices.numel();
  RouteResult result{Tensor::zeros(DType::I32, indices.shape),
                     Tensor::zeros(DType::I64, {ranks, numExperts}),
                     Tensor::scalar(DType::I64, 0)};
  // Each expert's queue of assignments t * k + c in token-major order: all of
  // token t's choices queue before token t+1's.
  std::vector<std::vector<int64_t>> queues(numExperts);
  for (int64_t i = 0; i < assignments; ++i)
    queues[checkedIndex(indices.data[i], numExperts,
                        "moe.dispatch: expert index")]
        .push_back(i);
  // An expert keeps the first `capacity` of its queue: by arrival, or ranked
  // by priority (the stable sort leaves ties in arrival order).
  std::vector<bool> kept(assignments, false);
  for (std::vector<int64_t> &queue : queues) {
    if (priority)
      std::stable_sort(queue.begin(), queue.end(), [&](int64_t a, int64_t b) {
        return priority->data[a] > priority->data[b];
      });
    for (size_t i = 0; i < queue.size() && static_cast<int64_t>(i) < capacity;
         ++i)
      kept[queue[i]] = true;
  }
  // The kept assignments take rows in token-major order; each part's rows
  // are counted from the start of its run.
  int64_t partSize = assignments / ranks;
  for (int64_t i = 0; i < assignments; ++i) {
    if (!kept[i]) {
      result.slots.data[i] = -1;
      result.dropped.data[0] += 1;
      continue;
    }
    int64_t expert = static_cast<int64_t>(indices.data[i]);
    double &run = result.counts.data[i / partSize * numExperts + expert];
    result.slots.data[i] = run++;
  }
  return result;
}

namespace {

/// Calls `move(block, runRow, expert, queueRow)` for every row of every
/// run: run block `block` row `runRow` is row `queueRow` of `expert`.
template <typename Move>
void forEachRunRow(const Tensor &counts, int64_t runCapacity, int64_t capacity,
                   const char *opName, Move move) {
  int64_t ranks = counts.dim(0), experts = counts.dim(1);
  for (int64_t e = 0; e < experts; ++e) {
    int64_t start = 0;
    for (int64_t p = 0; p < ranks; ++p) {
      int64_t count = static_cast<int64_t>(counts.data[p * experts + e]);
      if (count < 0 || count > runCapacity || start + count > capacity)
        moert::fail("{}: rank {}'s run of {} rows for expert {} does not fit "
                    "runs of {} rows or a queue of {} rows",
                    opName, p, count, e, runCapacity, capacity);
      for (int64_t row = 0; row < count; ++row)
        move(p * experts + e, row, e, start + row);
      start += count;
    }
  }
}

} // namespace

Tensor mlir::moe::ref::mergeRuns(const Tensor &runs, const Tensor &counts,
                                 int64_t capacity) {
  int64_t runCapacity = runs.dim(1), hidden = runs.dim(2);
  Tensor queue = Tensor::zeros(runs.dtype, {counts.dim(1), capacity, hidden});
  forEachRunRow(counts, runCapacity, capacity, "moe.merge_runs",
                [&](int64_t block, int64_t runRow, int64_t e, int64_t row) {
                  std::copy_n(
                      &runs.data[(block * runCapacity + runRow) * hidden],
                      hidden, &queue.data[(e * capacity + row) * hidden]);
                });
  return queue;
}

Tensor mlir::moe::ref::splitRuns(const Tensor &queue, const Tensor &counts,
                                 int64_t runCapacity) {
  int64_t capacity = queue.dim(1), hidden = queue.dim(2);
  Tensor runs =
      Tensor::zeros(queue.dtype, {counts.numel(), runCapacity, hidden});
  forEachRunRow(counts, runCapacity, capacity, "moe.split_runs",
                [&](int64_t block, int64_t runRow, int64_t e, int64_t row) {
                  std::copy_n(
                      &queue.data[(e * capacity + row) * hidden], hidden,
                      &runs.data[(block * runCapacity + runRow) * hidden]);
                });
  return runs;
}

Tensor mlir::moe::ref::place(const Tensor &tokens, const Tensor &indices,
                             const Tensor &slots, int64_t numExperts,
                             int64_t capacity) {
  int64_t hidden = tokens.dim(1), topK = indices.dim(1);
  Tensor buffer = Tensor::zeros(tokens.dtype, {numExperts, capacity, hidden});
  for (int64_t i = 0; i < indices.numel(); ++i) {
    if (slots.data[i] < 0)
      continue;
    int64_t expert =
        checkedIndex(indices.data[i], numExperts, "moe.place: expert index");
    int64_t slot = checkedIndex(slots.data[i], capacity, "moe.place: slot");
    std::copy_n(&tokens.data[i / topK * hidden], hidden,
                &buffer.data[(expert * capacity + slot) * hidden]);
  }
  return buffer;
}

DispatchResult mlir::moe::ref::dispatch(const Tensor &tokens,
                                        const Tensor &indices,
                                        int64_t numExperts, int64_t capacity,
                                        const Tensor *priority) {
  RouteResult routed = route(indices, numExperts, capacity, priority);
  return {place(tokens, indices, routed.slots, numExperts, capacity),
          std::move(routed.slots), std::move(routed.dropped)};
}

Tensor mlir::moe::ref::expertProjections(const Tensor &input,
                                         const Tensor &gateProj,
                                         const Tensor &upProj) {
  int64_t experts = input.dim(0), capacity = input.dim(1);
  int64_t hidden = input.dim(2), ffn = gateProj.dim(1);
  Tensor result = Tensor::zeros(input.dtype, {experts, 2, capacity, ffn});
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t which = 0; which < 2; ++which) {
      const double *w =
          &(which == 0 ? gateProj : upProj).data[e * ffn * hidden];
      for (int64_t r = 0; r < capacity; ++r) {
        const double *x = &input.data[(e * capacity + r) * hidden];
        double *out = &result.data[((e * 2 + which) * capacity + r) * ffn];
        for (int64_t f = 0; f < ffn; ++f) {
          double sum = 0;
          for (int64_t d = 0; d < hidden; ++d)
            sum += x[d] * w[f * hidden + d];
          // Kept for the backward in the operands' precision.
          out[f] = rounded(sum, input.dtype);
        }
      }
    }
  return result;
}

Tensor mlir::moe::ref::expertFfn(const Tensor &input, const Tensor &gateProj,
                                 const Tensor &upProj, const Tensor &downProj) {
  int64_t experts = input.dim(0), capacity = input.dim(1);
  int64_t hidden = input.dim(2), ffn = gateProj.dim(1);
  Tensor projections = expertProjections(input, gateProj, upProj);
  Tensor result = Tensor::zeros(input.dtype, input.shape);
  std::vector<double> activation(ffn);
  for (int64_t e = 0; e < experts; ++e) {
    const double *wDown = &downProj.data[e * hidden * ffn];
    for (int64_t r = 0; r < capacity; ++r) {
      const double *g = &projections.data[((e * 2) * capacity + r) * ffn];
      const double *u = &projections.data[((e * 2 + 1) * capacity + r) * ffn];
      // The activation is the down projection's operand, in its precision.
      for (int64_t f = 0; f < ffn; ++f)
        activation[f] =
            rounded(g[f] / (1.0 + std::exp(-g[f])) * u[f], input.dtype);
      double *y = &result.data[(e * capacity + r) * hidden];
      for (int64_t d = 0; d < hidden; ++d) {
        double sum = 0;
        for (int64_t f = 0; f < ffn; ++f)
          sum += activation[f] * wDown[d * ffn + f];
        y[d] = sum;
      }
    }
  }
  return result;
}

Tensor mlir::moe::ref::combine(const Tensor &expertOutput,
                               const Tensor &weights, const Tensor &indices,
                               const Tensor &slots) {
  int64_t experts = expertOutput.dim(0), capacity = expertOutput.dim(1);
  int64_t hidden = expertOutput.dim(2);
  int64_t tokens = weights.dim(0), topK = weights.dim(1);
  Tensor result = Tensor::zeros(expertOutput.dtype, {tokens, hidden});
  // Dropped assignments add nothing: the residual path carries the token.
  forEachKeptAssignment(indices, slots, experts, capacity, "moe.combine",
                        [&](int64_t assignment, int64_t row) {
                          int64_t token = assignment / topK;
                          double weight = weights.data[assignment];
                          for (int64_t d = 0; d < hidden; ++d)
                            result.data[token * hidden + d] +=
                                weight * expertOutput.data[row * hidden + d];
                        });
  return result;
}

Tensor mlir::moe::ref::auxLoss(AuxLossKind kind, const Tensor &probs,
                               const Tensor &indices) {
  int64_t experts = probs.dim(1);
  auto [meanProb, assignedFraction] =
      mlir::moe::ref::detail::routerStatistics(probs, indices);
  double loss = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (kind == AuxLossKind::Skywork) {
      double gap = 1.0 / experts - meanProb[e];
      loss += gap * gap;
    } else {
      loss += experts * assignedFraction[e] * meanProb[e];
    }
  }
  return Tensor::scalar(probs.dtype, loss);
}

Tensor
mlir::moe::ref::pooledAuxLoss(const std::vector<const Tensor *> &probs,
                              const std::vector<const Tensor *> &indices) {
  moert::rows::PooledLoad load(probs.front()->dim(1));
  for (size_t layer = 0; layer < probs.size(); ++layer)
    load.addLayer(probs[layer]->data.data(), indices[layer]->data.data(),
                  indices[layer]->dim(0), indices[layer]->dim(1));
  return Tensor::scalar(probs.front()->dtype, load.loss());
}

Tensor mlir::moe::ref::zLoss(const Tensor &logits) {
  int64_t tokens = logits.dim(0), experts = logits.dim(1);
  double total = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    double lse = logSumExp(&logits.data[t * experts], experts);
    total += lse * lse;
  }
  return Tensor::scalar(logits.dtype, total / static_cast<double>(tokens));
}

Tensor mlir::moe::ref::adaptiveAuxCoeff(const Tensor &alpha,
                                        const Tensor &dropped, double xi,
                                        double alphaMax, double beta,
                                        int64_t assignments) {
  double dropRate = dropped.data[0] / static_cast<double>(assignments);
  double target = std::min(xi * dropRate, alphaMax);
  return Tensor::scalar(alpha.dtype,
                        beta * alpha.data[0] + (1.0 - beta) * target);
}

Tensor mlir::moe::ref::expertLoad(const Tensor &indices, int64_t experts) {
  Tensor load = Tensor::zeros(DType::I64, {experts});
  for (double index : indices.data)
    load.data[checkedIndex(index, experts, "moe.expert_load: expert index")] +=
        1;
  return load;
}

Tensor mlir::moe::ref::expertBiasUpdate(const Tensor &bias, const Tensor &load,
                                        double rate) {
  int64_t experts = bias.dim(0);
  double total = std::accumulate(load.data.begin(), load.data.end(), 0.0);
  Tensor result = bias;
  for (int64_t e = 0; e < experts; ++e) {
    // sign(mean - load_e), compared as total and experts * load_e (exact).
    double under = total - static_cast<double>(experts) * load.data[e];
    result.data[e] += rate * ((under > 0) - (under < 0));
  }
  result.roundToDType();
  return result;
}

RoutingMetrics mlir::moe::ref::routingMetrics(const Tensor &probs,
                                              const Tensor &indices,
                                              const Tensor &slots,
                                              DType metricType) {
  int64_t tokens = probs.dim(0), experts = probs.dim(1);
  int64_t assignments = indices.numel();
  RoutingMetrics result{
      Tensor::scalar(metricType, 0), Tensor::scalar(metricType, 0),
      Tensor::scalar(metricType, 0), Tensor::zeros(DType::I64, {experts})};
  int64_t dropped = 0;
  for (int64_t i = 0; i < assignments; ++i) {
    if (slots.data[i] < 0)
      ++dropped;
    else
      result.load.data[checkedIndex(indices.data[i], experts,
                                    "moe.routing_metrics: expert index")] += 1;
  }
  result.dropRate.data[0] =
      static_cast<double>(dropped) / static_cast<double>(assignments);
  // A denominator of at least the smallest normal float keeps a token whose
  // runners-up underflowed to zero finite.
  const double floor = std::numeric_limits<float>::min();
  std::vector<double> row(experts);
  double sum12 = 0, sum23 = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    row.assign(&probs.data[t * experts], &probs.data[(t + 1) * experts]);
    std::sort(row.rbegin(), row.rend());
    sum12 += row[0] / std::max(row[1], floor);
    sum23 += row[1] / std::max(row[2], floor);
  }
  result.max1Max2.data[0] = sum12 / static_cast<double>(tokens);
  result.max2Max3.data[0] = sum23 / static_cast<double>(tokens);
  return result;
}

Tensor mlir::moe::ref::expertSimilarity(const Tensor &gateProj,
                                        const Tensor &upProj,
                                        const Tensor &downProj,
                                        DType resultType) {
  int64_t experts = gateProj.dim(0);
  // <theta_e, theta_f> over the concatenation of the three slices.
  auto dot = [&](int64_t e, int64_t f) {
    double sum = 0;
    for (const Tensor *weights : {&gateProj, &upProj, &downProj}) {
      int64_t size = weights->numel() / experts;
      for (int64_t i = 0; i < size; ++i)
        sum += weights->data[e * size + i] * weights->data[f * size + i];
    }
    return sum;
  };
  std::vector<double> norms(experts);
  for (int64_t e = 0; e < experts; ++e)
    norms[e] = std::sqrt(dot(e, e));
  double total = 0;
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t f = e + 1; f < experts; ++f)
      if (norms[e] > 0 && norms[f] > 0)
        total += dot(e, f) / (norms[e] * norms[f]);
  double pairs = static_cast<double>(experts * (experts - 1) / 2);
  return Tensor::scalar(resultType, total / pairs);
}
