//===- Estimator.h - a layout's memory and step time ------------*- C++ -*-===//
//
// Prices a layout from the cost model's counts of one rank's train step
// (moe/Analysis/ProgramCost.h), compiled for the layout's expert-parallel
// degree with one sequence per rank. Everything per token scales with the
// micro-batch and is split over tensor-parallel ranks; what the program
// cannot show yet (tensor-parallel and pipeline transfers, data-parallel
// gradient reduction, mixed-precision state) the estimator adds from the
// layout. docs/Estimator.md gives the formulas.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ESTIMATE_ESTIMATOR_H
#define MOE_ESTIMATE_ESTIMATOR_H

#include "moe/Analysis/ProgramCost.h"
#include "moe/Estimate/Cluster.h"
#include "moe/Estimate/Layout.h"

#include <map>
#include <string>
#include <vector>

namespace mlir::moe {

/// What the estimator needs of the model beyond its program.
struct ModelShape {
  int64_t layers = 0, hidden = 0, heads = 0, kvHeads = 0, experts = 0;
  int64_t seqLen = 0;
};

/// One kind of collective of a slot and phase: its payload per rank per
/// sequence.
struct CollectiveUse {
  std::string name;
  Phase phase = Phase::Forward;
  int64_t groupSize = 1;
  double bytes = 0;
  int64_t count = 0;
};

/// A pipeline slot priced for one sequence on one rank (no tensor
/// parallelism).
struct SlotProfile {
  double forwardSeconds = 0, backwardSeconds = 0;
  double forwardFlops = 0, backwardFlops = 0;
  /// Bytes the slot's parameter updates (AdamW) move, f32 state.
  double optimizerBytes = 0;
  std::vector<CollectiveUse> collectives;
  SlotCost cost;
};

struct ModelProfile {
  ModelShape shape;
  /// Expert-parallel ranks the program was compiled for.
  int64_t ep = 1;
  std::vector<SlotProfile> slots;
};

ModelProfile profileProgram(const ProgramCost &program, const ModelShape &shape,
                            const Cluster &cluster);

struct Estimate {
  Layout layout;
  /// Why the layout cannot run; empty when it can.
  std::string rejection;
  /// Whether the figures below were computed: the layout divides the model
  /// and the cluster (it may still not fit in memory).
  bool priced = false;
  int64_t microBatches = 0;
  /// The stage that needs the most memory per GPU, and its bytes.
  int64_t fullestStage = 0;
  double paramBytes = 0, gradBytes = 0, optimizerBytes = 0, activationBytes = 0,
         reservedBytes = 0, totalBytes = 0;
  /// Per GPU and step: model flops and each collective's bytes.
  double flops = 0;
  std::map<std::string, double> collectiveBytes;
  /// Seconds of one step: the pipeline (stage compute and transfers, with
  /// its bubble), the exposed gradient reduction and the optimizer.
  double pipelineSeconds = 0, bubbleFraction = 0, syncSeconds = 0,
         optimizerSeconds = 0, stepSeconds = 0;
  std::vector<double> stageSeconds;
  double tokensPerGpuPerSecond = 0, mfu = 0;

  bool fits() const { return rejection.empty(); }
};

/// Why `ep` ranks cannot share the model's experts; empty if they can.
std::string expertParallelError(const ModelShape &shape, int64_t ep);

/// `globalBatch` sequences of the profile's length per step.
Estimate estimate(const ModelProfile &profile, const Cluster &cluster,
                  const Layout &layout, int64_t globalBatch);

} // namespace mlir::moe

#endif // MOE_ESTIMATE_ESTIMATOR_H
