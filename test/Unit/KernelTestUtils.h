//===- KernelTestUtils.h - helpers of the f32 kernel tests ------*- C++ -*-===//
//
// What the f32 kernel tests of both targets share: the CPU kernels' tests
// (CpuTestUtils.h, against the reference kernels) and the CUDA kernels'
// (CudaTestUtils.h, against the CPU kernels). Random inputs, the shapes of
// the MoE layers and attention cases, and the f32 comparisons; neither the
// reference interpreter nor CUDA.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_KERNELTESTUTILS_H
#define MOE_TEST_UNIT_KERNELTESTUTILS_H

#include "moert/CpuKernels.h"
#include "moert/KernelTypes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace moe::test {

using Floats = std::vector<float>;
using Ids = std::vector<int32_t>;

//===----------------------------------------------------------------------===//
// Inputs.
//===----------------------------------------------------------------------===//

inline Floats randomFloats(int64_t count, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Floats values(static_cast<size_t>(count));
  for (float &value : values)
    value = normal(rng);
  return values;
}

inline Ids randomIds(int64_t count, int32_t bound, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> uniform(0, bound - 1);
  Ids ids(static_cast<size_t>(count));
  for (int32_t &id : ids)
    id = uniform(rng);
  return ids;
}

/// k distinct experts per token, as a gate picks them.
inline Ids randomChoices(int64_t tokens, int64_t experts, int64_t topK,
                         uint32_t seed) {
  std::mt19937 rng(seed);
  Ids order(static_cast<size_t>(experts)), ids;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t e = 0; e < experts; ++e)
      order[e] = static_cast<int32_t>(e);
    std::shuffle(order.begin(), order.end(), rng);
    ids.insert(ids.end(), order.begin(), order.begin() + topK);
  }
  return ids;
}

/// Outputs start as NaN, so that an element a kernel leaves unwritten shows.
inline Floats output(int64_t count) {
  return Floats(static_cast<size_t>(count),
                std::numeric_limits<float>::quiet_NaN());
}

/// A gate's configuration (eps 1e-6, the importer's).
inline moert::GateConfig gateConfig(int64_t topK, bool normalize, double lambda,
                                    bool renormalize) {
  return moert::GateConfig{topK, normalize, lambda, 1e-6, renormalize};
}

//===----------------------------------------------------------------------===//
// Shapes.
//===----------------------------------------------------------------------===//

/// An MoE layer's shape.
struct Shape {
  int64_t tokens, hidden, experts, topK, ffn;
  std::string name() const {
    return std::to_string(tokens) + "x" + std::to_string(hidden) + " e" +
           std::to_string(experts) + " k" + std::to_string(topK) + " f" +
           std::to_string(ffn);
  }
};

// Includes one expert, sizes off the 16-lane blocks, the benchmark's and
// top-1 routing (Switch) over several experts.
inline const Shape kShapes[] = {{1, 1, 1, 1, 1},      {5, 3, 4, 2, 7},
                                {37, 17, 6, 3, 23},   {64, 32, 8, 2, 40},
                                {100, 20, 16, 4, 33}, {768, 128, 8, 2, 352},
                                {50, 9, 5, 5, 17},    {9, 4, 3, 1, 5}};

/// The gate normalization tests' shapes: `shapes`, and 65536 x 16 logits,
/// enough for the OpenMP team.
template <typename Shapes>
std::vector<Shape> gateNormShapes(const Shapes &shapes) {
  std::vector<Shape> all(std::begin(shapes), std::end(shapes));
  all.push_back({65536, 1, 16, 1, 1});
  return all;
}

/// The gate normalization's logits for `s` (a constant first row: std 0,
/// where only the centring path remains) and its result's gradient.
inline std::pair<Floats, Floats> gateNormInputs(const Shape &s) {
  int64_t count = s.tokens * s.experts;
  Floats logits = randomFloats(count, 1, 2.0f);
  std::fill(logits.begin(), logits.begin() + s.experts, 0.5f);
  return {std::move(logits), randomFloats(count, 2)};
}

/// An expert's capacity at capacity factor 1.25.
inline int64_t expertCapacity(const Shape &s) {
  return (s.tokens * s.topK * 5 / 4 + s.experts - 1) / s.experts;
}

/// Random fill levels of `experts` queues of `capacity` rows, with an
/// empty one and (given 2 experts) a full one.
inline std::vector<int64_t> mixedFills(int64_t experts, int64_t capacity) {
  std::mt19937 rng(7);
  std::vector<int64_t> counts(static_cast<size_t>(experts));
  for (int64_t &count : counts)
    count = std::uniform_int_distribution<int64_t>(0, capacity)(rng);
  counts[0] = experts > 1 ? 0 : capacity;
  if (experts > 1)
    counts[1] = capacity;
  return counts;
}

/// A layer's expert weights ([experts, ffn, hidden] gate and up, their
/// down projection laid out as [experts, hidden, ffn]) that share a common
/// part, so that the experts' similarities are far from 0, and whose last
/// expert is zero.
struct SimilarExperts {
  Floats gateProj, upProj, downProj;
};
inline SimilarExperts similarExperts(const Shape &s) {
  int64_t size = s.experts * s.ffn * s.hidden, matrix = s.ffn * s.hidden;
  Floats common = randomFloats(matrix, 1);
  SimilarExperts w{randomFloats(size, 2), randomFloats(size, 3),
                   randomFloats(size, 4)};
  for (int64_t i = 0; i < size; ++i) {
    w.gateProj[i] += 2.0f * common[i % matrix];
    if (i >= size - matrix)
      w.gateProj[i] = w.upProj[i] = w.downProj[i] = 0.0f;
  }
  return w;
}

/// Router logits [tokens, experts] whose first row's runners-up underflow
/// to 0 in f32 (the routing metrics' ratios must not divide by them).
inline Floats logitsWithUnderflowingRow(const Shape &s) {
  Floats logits = randomFloats(s.tokens * s.experts, 1, 2.0f);
  std::fill(logits.begin(), logits.begin() + s.experts, -200.0f);
  logits[0] = 0.0f;
  return logits;
}

/// An AdamW update of `count` parameters, clipped at `maxGradNorm` (0:
/// off), at optimizer step `step`, with random state: Adam moments of
/// plausible sizes (the second non-negative).
struct AdamWCase {
  int64_t count;
  double maxGradNorm;
  int64_t step;
  Floats param, grad, expAvg, expAvgSq;
  float lr = 3e-4f, gradNorm = 4.5f;

  AdamWCase(int64_t count, double maxGradNorm, int64_t step)
      : count(count), maxGradNorm(maxGradNorm), step(step),
        param(randomFloats(count, 1)), grad(randomFloats(count, 2)),
        expAvg(randomFloats(count, 3, 0.1f)),
        expAvgSq(randomFloats(count, 4, 0.01f)) {
    for (float &value : expAvgSq)
      value = value * value;
  }
  moert::AdamWConfig config() const {
    return {0.9, 0.95, 1e-8, 0.1, maxGradNorm};
  }
  std::string name() const {
    return std::to_string(count) + " clip " + std::to_string(maxGradNorm) +
           " step " + std::to_string(step);
  }
  /// The CPU kernel's update: the new parameters and moments.
  struct Update {
    Floats param, expAvg, expAvgSq;
  };
  Update cpuUpdate() const {
    Update next{output(count), output(count), output(count)};
    moert::cpu::adamw(param.data(), grad.data(), expAvg.data(), expAvgSq.data(),
                      count, lr, gradNorm, step, config(), next.param.data(),
                      next.expAvg.data(), next.expAvgSq.data());
    return next;
  }
};

/// One element, a vector's tail, and more than a block's; no clipping, a
/// clip that bites and one that does not; the first step and a later one.
inline std::vector<AdamWCase> adamwCases() {
  std::vector<AdamWCase> cases;
  for (int64_t count : {1, 37, 100003})
    for (double maxGradNorm : {0.0, 1.0, 1e6})
      for (int64_t step : {0, 9})
        cases.emplace_back(count, maxGradNorm, step);
  return cases;
}

/// RoPE's shapes: the smallest, odd and even sizes, Llama 3's theta, and a
/// long sequence.
struct RopeCase {
  int64_t batch, seq, heads, headDim;
  double theta;
  moert::RopeScaling scaling = {};
  /// The rotated dimensions of each head (GLM's partial rotary embedding);
  /// 0: all.
  int64_t rotaryDim = 0;
  /// Pairs (2i, 2i + 1) rather than (i, i + rotated / 2).
  bool interleaved = false;
  int64_t rotated() const { return rotaryDim ? rotaryDim : headDim; }
  /// The shape, and how its heads rotate where not all by halves.
  std::string name() const;
};
/// The scaled cases' original contexts are short, so that their frequencies
/// fall on every branch of the kind's formula.
inline const RopeCase kRopeCases[] = {
    {1, 1, 1, 2, 10000},
    {2, 5, 3, 6, 10000},
    {12, 64, 4, 32, 10000},
    {2, 37, 2, 18, 500000},
    {1, 1000, 1, 64, 10000},
    {2, 37, 2, 18, 10000, {moert::RopeKind::Linear, 4}},
    {2, 40, 2, 32, 500000, {moert::RopeKind::Llama3, 8, 1, 4, 32}},
    {12,
     64,
     4,
     32,
     10000,
     {moert::RopeKind::Yarn, 4, 1, 4, 16, 32, 1, true, 1.1386294361119891}},
    {2,
     33,
     2,
     64,
     1000000,
     {moert::RopeKind::Yarn, 2.5, 1, 4, 20, 16, 2, false, 1.25}},
    // Partial: half of each head rotates (GLM-4.5's), a quarter, all but 2,
    // and with YaRN on the rotated ones.
    {2, 37, 2, 18, 10000, {}, 10},
    {12, 64, 4, 32, 10000, {}, 8},
    {2, 5, 3, 6, 10000, {}, 4},
    {12,
     64,
     4,
     32,
     10000,
     {moert::RopeKind::Yarn, 4, 1, 4, 16, 32, 1, true, 1.1386294361119891},
     16},
    // Interleaved pairs (ERNIE 4.5's): whole heads, partial, scaled.
    {2, 37, 2, 18, 10000, {}, 0, true},
    {12, 64, 4, 32, 10000, {}, 16, true},
    {2, 40, 2, 32, 500000, {moert::RopeKind::Llama3, 8, 1, 4, 32}, 0, true}};

struct AttentionCase {
  int64_t batch, seq, heads, kvHeads, headDim;

  std::vector<int64_t> queryShape() const {
    return {batch, seq, heads, headDim};
  }
  std::vector<int64_t> keyShape() const {
    return {batch, seq, kvHeads, headDim};
  }
  int64_t queryCount() const { return batch * seq * heads * headDim; }
  int64_t keyCount() const { return batch * seq * kvHeads * headDim; }
  std::string name(moert::AttentionMask mask) const;
};

/// The masks each attention case runs under: none, causal, and causal
/// within windows of two positions, a third of the sequence (across the
/// kernels' blocks of queries) and one short of it. (Within one, each
/// query sees its own key alone, and the scores' gradients, zero, come out
/// as rounding errors.)
inline std::vector<moert::AttentionMask>
attentionMasks(const AttentionCase &c) {
  std::vector<moert::AttentionMask> masks = {{false}, {true}};
  for (int64_t window : {int64_t(2), (c.seq + 1) / 3, c.seq - 1})
    if (window >= 2 && window < c.seq && masks.back().window != window)
      masks.push_back({true, window});
  return masks;
}

/// A case's query (scores of a few units: sharp softmax rows, not one-hot
/// ones), key, value and output gradient.
struct AttentionInputs {
  Floats q, k, v, dOut;
};
inline AttentionInputs attentionInputs(const AttentionCase &c) {
  return {randomFloats(c.queryCount(), 1, 1.5f), randomFloats(c.keyCount(), 2),
          randomFloats(c.keyCount(), 3), randomFloats(c.queryCount(), 4)};
}

// One position, grouped queries (4 heads on 2 kv heads, 6 on 3, 2 on 1),
// sizes off the vector widths, head_dim 200 over four 64-wide chunks, and
// the benchmark's shape.
inline const AttentionCase kAttentionCases[] = {
    {1, 1, 1, 1, 2},    {2, 7, 4, 2, 6},    {12, 64, 4, 4, 32},
    {12, 64, 4, 2, 32}, {3, 37, 4, 2, 18},  {2, 20, 6, 3, 16},
    {1, 130, 2, 1, 40}, {1, 17, 1, 1, 200},
};

/// "2x3x4" for sizes {2, 3, 4}.
inline std::string shapeName(std::initializer_list<int64_t> sizes) {
  std::string name;
  for (int64_t size : sizes)
    name += (name.empty() ? "" : "x") + std::to_string(size);
  return name;
}

inline std::string RopeCase::name() const {
  return shapeName({batch, seq, heads, headDim}) +
         (rotaryDim ? " rotary " + std::to_string(rotaryDim) : "") +
         (interleaved ? " interleaved" : "");
}

inline std::string AttentionCase::name(moert::AttentionMask mask) const {
  return shapeName({batch, seq, heads, kvHeads, headDim}) +
         (mask.causal ? " causal" : "") +
         (mask.window ? " window " + std::to_string(mask.window) : "");
}

//===----------------------------------------------------------------------===//
// Comparisons.
//===----------------------------------------------------------------------===//

/// f32 accuracy: within `relative` of the largest expected magnitude (f32
/// sums in another order); NaN anywhere fails. `Expected` is double (the
/// reference kernels') or float (the CPU kernels').
template <typename Expected>
inline void expectClose(const Floats &actual,
                        const std::vector<Expected> &expected,
                        const std::string &what, double relative = 1e-5) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double largest = 0;
  for (Expected value : expected)
    largest = std::max(largest, std::abs(static_cast<double>(value)));
  double tolerance = relative * std::max(largest, 1e-30);
  int64_t bad = 0, worst = -1;
  double worstError = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double error = std::abs(static_cast<double>(actual[i]) -
                            static_cast<double>(expected[i]));
    if (error <= tolerance)
      continue;
    ++bad;
    if (worst < 0 || !(error <= worstError)) {
      worst = static_cast<int64_t>(i);
      worstError = error;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": worst at " << worst << ": "
                    << (worst >= 0 ? actual[worst] : 0.0f) << " vs "
                    << (worst >= 0 ? expected[worst] : Expected(0))
                    << " (tolerance " << tolerance << ")";
}

template <typename T>
inline void expectBitwiseEqual(const std::vector<T> &a, const std::vector<T> &b,
                               const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0)
      << what << ": the bits differ";
}

/// The rows [e, r < counts[e]) of an [experts, capacity, width] buffer,
/// concatenated, as `Element`s (double, to compare with the reference's).
template <typename Element = double, typename T>
inline std::vector<Element> filledRows(const std::vector<T> &buffer,
                                       const std::vector<int64_t> &counts,
                                       int64_t capacity, int64_t width) {
  std::vector<Element> rows;
  for (size_t e = 0; e < counts.size(); ++e)
    rows.insert(rows.end(), buffer.begin() + e * capacity * width,
                buffer.begin() + (e * capacity + counts[e]) * width);
  return rows;
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_KERNELTESTUTILS_H
