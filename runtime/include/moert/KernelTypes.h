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

namespace moert {

/// The rows a cross-entropy counts: all, or those whose target is not
/// `ignoreIndex` (moe.cross_entropy's ignore_index).
struct CountedTargets {
  bool ignores;
  int64_t ignoreIndex;
};

struct GateConfig {
  int64_t topK;
  bool normalize; // logit normalization with lambda and eps
  double lambda, eps;
  bool renormalize;
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

struct AdamWConfig {
  double beta1, beta2, eps, weightDecay, maxGradNorm;
};

} // namespace moert

#endif // MOERT_KERNELTYPES_H
