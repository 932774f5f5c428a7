//===- StepMetrics.cpp - a model function's outputs as metrics ------------===//

#include "StepMetrics.h"

#include "moert/MicroBatches.h"
#include "moert/StateNames.h"

#include <fmt/core.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace moert {
namespace {

constexpr std::string_view kLayerPrefix = "model.layers.";
constexpr std::string_view kMoeBlock = ".block_sparse_moe.";

double elementAt(const void *data, int32_t dtype, int64_t index) {
  switch (dtype) {
  case MOE_F32:
    return static_cast<const float *>(data)[index];
  case MOE_F64:
    return static_cast<const double *>(data)[index];
  case MOE_I32:
    return static_cast<const int32_t *>(data)[index];
  default:
    return static_cast<double>(static_cast<const int64_t *>(data)[index]);
  }
}

nlohmann::json element(const void *data, int32_t dtype, int64_t index) {
  if (dtype == MOE_I32 || dtype == MOE_I64)
    return static_cast<int64_t>(elementAt(data, dtype, index));
  return elementAt(data, dtype, index);
}

/// Splits "model.layers.<N>.block_sparse_moe.<metric>" into N and metric.
std::optional<std::pair<std::string, std::string>>
splitLayerMetric(std::string_view name) {
  if (name.substr(0, kLayerPrefix.size()) != kLayerPrefix)
    return std::nullopt;
  size_t block = name.find(kMoeBlock, kLayerPrefix.size());
  if (block == std::string_view::npos)
    return std::nullopt;
  return std::pair{std::string(name.substr(kLayerPrefix.size(),
                                           block - kLayerPrefix.size())),
                   std::string(name.substr(block + kMoeBlock.size()))};
}

/// The metric named `metric` in `line`, by MoE layer in numeric order.
std::map<int64_t, double> layerMetric(const nlohmann::json &line,
                                      std::string_view metric) {
  std::map<int64_t, double> values;
  for (const auto &[name, value] : line.items())
    if (auto split = splitLayerMetric(name);
        split && split->second == metric && value.is_number())
      values[std::stoll(split->first)] = value.get<double>();
  return values;
}

/// The mean over MoE layers of the metric named `metric` in `line`, if any
/// layer reports it.
std::optional<double> layerMean(const nlohmann::json &line,
                                std::string_view metric) {
  std::map<int64_t, double> values = layerMetric(line, metric);
  if (values.empty())
    return std::nullopt;
  double total = 0;
  for (const auto &[layer, value] : values)
    total += value;
  return total / static_cast<double>(values.size());
}

/// Prints one line per MoE layer with the layer metrics found in `line`.
void printLayerMetrics(const nlohmann::json &line) {
  // Layer number -> metric -> value, layers in numeric order.
  std::map<int64_t, std::map<std::string, nlohmann::json>> layers;
  for (const auto &[name, value] : line.items())
    if (auto split = splitLayerMetric(name))
      layers[std::stoll(split->first)][split->second] = value;
  struct Column {
    const char *metric, *label, *format;
    double scale;
  };
  static const Column kColumns[] = {
      {"drop_rate", "drop", "{:5.2f}%", 100},
      {"aux_loss_coeff", "alpha", "{:.3e}", 1},
      {"aux_loss", "aux", "{:.3e}", 1},
      {"z_loss", "z", "{:.3f}", 1},
      {"max1_max2", "max1/max2", "{:.3f}", 1},
      {"max2_max3", "max2/max3", "{:.3f}", 1},
      {"expert_similarity", "similarity", "{:.4f}", 1},
  };
  for (const auto &[layer, metrics] : layers) {
    fmt::print("  layer {:2}", layer);
    for (const Column &column : kColumns) {
      auto found = metrics.find(column.metric);
      if (found == metrics.end() || !found->second.is_number())
        continue;
      fmt::print(" | {} ", column.label);
      fmt::print(fmt::runtime(column.format),
                 found->second.get<double>() * column.scale);
    }
    if (auto load = metrics.find("expert_load");
        load != metrics.end() && load->second.is_array()) {
      fmt::print(" | load");
      // A mean over micro-batches is shown rounded.
      for (const nlohmann::json &tokens : load->second)
        fmt::print(" {:.0f}", tokens.get<double>());
    }
    fmt::print("\n");
  }
}

std::string formatDuration(double seconds) {
  int64_t total = static_cast<int64_t>(seconds + 0.5);
  return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60,
                     total % 60);
}

/// The optimizer's state: its last step's value stands for an interval.
bool isOptimizerState(std::string_view key) {
  return key == kLearningRateOutput || key == kGradNormOutput ||
         isAuxLossCoeff(key);
}

} // namespace

std::string layerValues(const nlohmann::json &line, std::string_view metric) {
  std::string text;
  for (const auto &[layer, value] : layerMetric(line, metric))
    text += fmt::format("{}L{} {:.4f}", text.empty() ? "" : " ", layer, value);
  return text;
}

void addOutput(nlohmann::json &line, const moe_function &function,
               int64_t index, const void *data) {
  const moe_tensor_desc &desc = function.outputs[index];
  int64_t count = 1;
  for (int32_t d = 0; d < desc.rank; ++d)
    count *= desc.shape[d];
  if (desc.rank == 0) {
    line[desc.name] = element(data, desc.dtype, 0);
    return;
  }
  nlohmann::json values = nlohmann::json::array();
  for (int64_t i = 0; i < count; ++i)
    values.push_back(element(data, desc.dtype, i));
  line[desc.name] = std::move(values);
}

ProgressLog::ProgressLog(std::string lossName, int64_t finalStep,
                         double tokensPerStep, double flopsPerStep,
                         int32_t ranks)
    : lossName(std::move(lossName)), finalStep(finalStep),
      tokensPerStep(tokensPerStep), flopsPerStep(flopsPerStep), ranks(ranks) {}

void ProgressLog::add(nlohmann::json figures, double seconds) {
  interval.push_back(std::move(figures));
  intervalSeconds += seconds;
  stepSecondsSum += seconds;
  ++stepsTimed;
}

void ProgressLog::print(int64_t step) {
  if (interval.empty())
    return;
  nlohmann::json line = meanOfFigures(interval, isOptimizerState);
  double steps = static_cast<double>(interval.size());
  double stepSeconds = intervalSeconds / steps;
  fmt::print("step {:5}/{} | loss {:.4f}", step, finalStep,
             line[lossName].get<double>());
  if (std::optional<double> aux = layerMean(line, "aux_loss"))
    fmt::print(" | aux {:.3e}", *aux);
  if (std::optional<double> drop = layerMean(line, "drop_rate"))
    fmt::print(" | drop {:.2f}%", *drop * 100);
  if (auto lr = line.find(kLearningRateOutput); lr != line.end())
    fmt::print(" | lr {:.2e}", lr->get<double>());
  if (auto norm = line.find(kGradNormOutput); norm != line.end())
    fmt::print(" | grad norm {:.3f}", norm->get<double>());
  double flopRate = flopsPerStep / stepSeconds;
  fmt::print(" | {:.1f} ms/step | {:.1f}k tok/s | {:.1f} {}FLOP/s{}",
             stepSeconds * 1e3, tokensPerStep / stepSeconds / 1e3,
             flopRate >= 1e12 ? flopRate / 1e12 : flopRate / 1e9,
             flopRate >= 1e12 ? "T" : "G", ranks > 1 ? "/rank" : "");
  fmt::print(" | ETA {}\n",
             formatDuration(stepSecondsSum / static_cast<double>(stepsTimed) *
                            static_cast<double>(finalStep - step)));
  printLayerMetrics(line);
  interval.clear();
  intervalSeconds = 0;
}

} // namespace moert
