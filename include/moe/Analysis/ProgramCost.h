//===- ProgramCost.h - the cost of a train step, by layer -------*- C++ -*-===//
//
// Adds up the OpCost of every op of a train step (one rank's program, as the
// importer, moe-expert-parallel and moe-autodiff build it) by pipeline slot:
// slot 0 holds what runs before the first transformer layer (the
// embedding), slot L + 1 for layer L, the last slot what runs after the
// last layer (final norm, output head, loss). Parameters and the
// activations the backward reads are counted per slot too, so that a
// pipeline layout can be priced from this one program.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ANALYSIS_PROGRAMCOST_H
#define MOE_ANALYSIS_PROGRAMCOST_H

#include "moe/Analysis/OpCost.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <vector>

namespace mlir::moe {

enum class Phase { Forward, Backward, Optimizer };

struct OpRecord {
  OpCost cost;
  Phase phase;
  size_t slot;
  /// An all_reduce that sums a replicated parameter's gradient over ranks:
  /// a layout prices it as its data-parallel gradient reduction.
  bool gradientSync = false;
  /// An optimizer op that updates one parameter (AdamW), as opposed to
  /// one over all gradients (their global norm).
  bool parameterUpdate = false;
};

struct SlotCost {
  /// Trainable parameter elements: those of expert FFNs (sharded over
  /// expert-parallel ranks) and the rest.
  double expertParams = 0, denseParams = 0;
  /// Bytes of forward values that the backward reads: what one
  /// micro-batch keeps alive between its forward and its backward.
  double savedActivationBytes = 0;
};

struct ProgramCost {
  int64_t numLayers = 0;
  /// numLayers + 2 slots.
  std::vector<SlotCost> slots;
  std::vector<OpRecord> ops;
  /// Ranks of the program's grid, and those that share the experts (the
  /// extent of its expert axis); 1 without expert parallelism.
  int64_t ranks = 1;
  int64_t expertRanks = 1;
};

/// The cost of `trainStep`, a function of forward ops (with `moe.layer`),
/// then Backward ops, then OptimizerStep ops. Errors (an op without a cost
/// formula) are emitted at the op.
FailureOr<ProgramCost> analyzeTrainStep(func::FuncOp trainStep);

} // namespace mlir::moe

#endif // MOE_ANALYSIS_PROGRAMCOST_H
