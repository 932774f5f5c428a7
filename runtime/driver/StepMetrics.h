//===- StepMetrics.h - a model function's outputs as metrics ----*- C++ -*-===//
//
// Every output of a train step besides the loss is a metric, named like the
// module it describes ("model.layers.3.block_sparse_moe.drop_rate"). The
// driver logs all of them as JSONL and prints the MoE layers' ones as one
// progress line per layer.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_STEPMETRICS_H
#define MOERT_DRIVER_STEPMETRICS_H

#include "moert/ModelAbi.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

namespace moert {

/// Adds output `index` of `function`, whose data is `data`, to `line` under
/// its name: a number for a scalar, an array for a vector or matrix.
void addOutput(nlohmann::json &line, const moe_function &function,
               int64_t index, const void *data);

/// The mean over MoE layers of the metric named `metric` in `line`, if any
/// layer reports it.
std::optional<double> layerMean(const nlohmann::json &line,
                                std::string_view metric);

/// Prints one line per MoE layer with the layer metrics found in `line`.
void printLayerMetrics(const nlohmann::json &line);

} // namespace moert

#endif // MOERT_DRIVER_STEPMETRICS_H
