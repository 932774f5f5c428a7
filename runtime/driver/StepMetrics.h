//===- StepMetrics.h - a model function's outputs as metrics ----*- C++ -*-===//
//
// Every output of a train step besides the loss is a metric, named like the
// module it describes ("model.layers.3.block_sparse_moe.drop_rate"). The
// driver logs all of them as JSONL and prints them every log interval as
// Megatron-LM's training log does: a progress line of the interval's means,
// then one line per MoE layer.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_STEPMETRICS_H
#define MOERT_DRIVER_STEPMETRICS_H

#include "moert/ModelAbi.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace moert {

/// Each MoE layer's value of `metric` in `line`, in layer order, as
/// "L1 0.0123 L3 -0.0040": a model's MoE layers need not be all its layers.
std::string layerValues(const nlohmann::json &line, std::string_view metric);

/// Adds output `index` of `function`, whose data is `data`, to `line` under
/// its name: a number for a scalar, an array for a vector or matrix.
void addOutput(nlohmann::json &line, const moe_function &function,
               int64_t index, const void *data);

/// The progress lines of a run's training steps.
class ProgressLog {
public:
  /// The run trains to step `finalStep`; `lossName` names the loss shown. A
  /// step trains `tokensPerStep` tokens on all ranks together and does
  /// `flopsPerStep` model FLOPs on each of `ranks` ranks.
  ProgressLog(std::string lossName, int64_t finalStep, double tokensPerStep,
              double flopsPerStep, int32_t ranks);

  /// Adds the figures of a step (its outputs, as metrics) that took
  /// `seconds`.
  void add(nlohmann::json figures, double seconds);

  /// Prints the line of the steps added since the last line, the last of
  /// them `step`: the means of their loss, aux loss, drop rate and time, the
  /// learning rate and gradient norm of the last, tokens and model FLOPs a
  /// second over them, the time left at this run's pace so far; then each
  /// MoE layer's figures (their means, the last step's aux-loss
  /// coefficient).
  void print(int64_t step);

  /// The seconds of every step added.
  double secondsTimed() const { return stepSecondsSum; }

private:
  std::string lossName;
  int64_t finalStep;
  double tokensPerStep, flopsPerStep;
  int32_t ranks;
  std::vector<nlohmann::json> interval;
  double intervalSeconds = 0, stepSecondsSum = 0;
  int64_t stepsTimed = 0;
};

} // namespace moert

#endif // MOERT_DRIVER_STEPMETRICS_H
