//===- KernelTypes.h - kernel arguments every target shares -----*- C++ -*-===//
//
// The configuration structs and enums that generated code passes to the
// kernels of any target (moert/CpuKernels.h, moert/CudaKernels.h) as
// literals, e.g. GateConfig{2, true, 1, 1e-06, true}.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_KERNELTYPES_H
#define MOERT_KERNELTYPES_H

#include <cstdint>

#include "moert/HostDevice.h"

namespace moert {

/// The rows a cross-entropy counts: all, or those whose target is not
/// `ignoreIndex` (moe.cross_entropy's ignore_index).
struct CountedTargets {
  bool ignores;
  int64_t ignoreIndex;
};

/// How a gate scores the experts (moe.gate's scoring): a softmax over a
/// token's logits, or a sigmoid of each.
enum class GateScoring { Softmax, Sigmoid };

struct GateConfig {
  int64_t topK;
  bool normalize; // logit normalization with lambda and eps
  double lambda, eps;
  bool renormalize;
  GateScoring scoring = GateScoring::Softmax;
  double scale = 1; // the weights' factor (routed_scaling_factor)
  // DeepSeek's group-limited routing: the experts in `groups` groups, the
  // choices from the best `groupTopK` (1 and 1: among all experts), each
  // group scored by the sum of its best `groupScoreTop` (V3's 2, V2's 1).
  int64_t groups = 1, groupTopK = 1, groupScoreTop = 2;
};

enum class AuxLossKind { Skywork, Switch };

/// How the learning rate falls from its peak after warmup (moe.lr_schedule).
enum class LrDecay { Cosine, Linear, Constant };

/// The axes of the model's grid that a collective runs over (bit i: axis
/// i): it runs among the ranks that differ only along them
/// (moert/GridGroups.h), e.g. GridAxes{2}, the ranks that share the experts
/// of a [replicas, expert ranks] grid.
struct GridAxes {
  int32_t mask;
};

/// How RoPE's frequencies are scaled (moe.rope's #moe.rope_scaling, after
/// transformers' rope_type): Default is theta^(-2i/d); Linear divides every
/// frequency by `factor`; Llama3 divides the low ones by it, keeps the high
/// ones and blends between (lowFreqFactor, highFreqFactor,
/// originalPositions); Yarn blends divided and kept ones over a ramp of
/// dimensions (originalPositions, betaFast, betaSlow, truncate) and scales
/// cos and sin by attentionFactor (1 for the others).
enum class RopeKind { Default, Linear, Llama3, Yarn };
struct RopeScaling {
  RopeKind kind = RopeKind::Default;
  double factor = 1;
  double lowFreqFactor = 1, highFreqFactor = 4;
  double originalPositions = 0;
  double betaFast = 32, betaSlow = 1;
  bool truncate = true;
  double attentionFactor = 1;
};

/// The keys each query of moe.attention sees: with `causal`, query i sees
/// keys j <= i, and with a `window` W too (0: none; Mistral's
/// sliding_window), only the W keys i - W < j <= i; else all `seq` keys.
/// The kernels of every target and the reference read the mask here.
struct AttentionMask {
  bool causal;
  int64_t window = 0;

  /// The first key query i sees.
  MOERT_HOST_DEVICE int64_t firstKey(int64_t i) const {
    return window && i >= window ? i - window + 1 : 0;
  }
  /// One past the last key query i sees, of `seq`.
  MOERT_HOST_DEVICE int64_t endKey(int64_t i, int64_t seq) const {
    return causal ? i + 1 : seq;
  }
  MOERT_HOST_DEVICE bool sees(int64_t i, int64_t j, int64_t seq) const {
    return j >= firstKey(i) && j < endKey(i, seq);
  }
};

struct AdamWConfig {
  double beta1, beta2, eps, weightDecay, maxGradNorm;
};

} // namespace moert

#endif // MOERT_KERNELTYPES_H
