//===- Cluster.cpp - cluster files ----------------------------------------===//

#include "moe/Estimate/Cluster.h"
#include "moert/Error.h"
#include "moert/Json.h"

#include "llvm/Support/FormatVariadic.h"

#include <nlohmann/json.hpp>

using namespace mlir::moe;
using nlohmann::json;

llvm::Expected<Cluster> mlir::moe::parseCluster(llvm::StringRef jsonText,
                                                llvm::StringRef fileName) {
  auto error = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   fileName + ": " + message);
  };
  json object;
  try {
    object = moert::parseJsonOrFail(
        std::string_view(jsonText.data(), jsonText.size()), fileName.str());
  } catch (const moert::Error &failure) {
    return llvm::createStringError(failure.what());
  }
  if (!object.is_object())
    return error("not a JSON object");

  Cluster cluster;
  // Key, destination, unit scale, whether it must be an integer.
  struct Field {
    const char *key;
    double *number;
    int64_t *integer;
    double scale;
  };
  const Field fields[] = {
      {"gpus", nullptr, &cluster.gpus, 1},
      {"gpus_per_node", nullptr, &cluster.gpusPerNode, 1},
      {"peak_bf16_tflops", &cluster.peakFlops, nullptr, 1e12},
      {"hbm_gb", &cluster.hbmBytes, nullptr, 1e9},
      {"hbm_bandwidth_gb_per_s", &cluster.hbmBandwidth, nullptr, 1e9},
      {"reserved_memory_gb", &cluster.reservedBytes, nullptr, 1e9},
      {"intra_node_bandwidth_gb_per_s", &cluster.intraNodeBandwidth, nullptr,
       1e9},
      {"intra_node_latency_us", &cluster.intraNodeLatency, nullptr, 1e-6},
      {"inter_node_bandwidth_gb_per_s", &cluster.interNodeBandwidth, nullptr,
       1e9},
      {"inter_node_latency_us", &cluster.interNodeLatency, nullptr, 1e-6},
      {"gemm_efficiency", &cluster.gemmEfficiency, nullptr, 1},
      {"gemm_half_efficiency_dim", &cluster.gemmHalfDim, nullptr, 1},
      {"attention_efficiency", &cluster.attentionEfficiency, nullptr, 1},
      {"memory_efficiency", &cluster.memoryEfficiency, nullptr, 1},
      {"collective_efficiency", &cluster.collectiveEfficiency, nullptr, 1},
  };
  for (const auto &item : object.items()) {
    // A named variable, not a structured binding: lambdas capture it.
    const std::string &key = item.key();
    const json &value = item.value();
    if (key == "name" || key == "notes") {
      if (!value.is_string())
        return error(llvm::formatv("key '{0}' must be a string", key));
      continue;
    }
    if (llvm::none_of(fields,
                      [&](const Field &field) { return key == field.key; }))
      return error(llvm::formatv("unknown key '{0}'", key));
  }
  cluster.name = object.value("name", std::string(fileName));
  for (const Field &field : fields) {
    if (!object.contains(field.key))
      return error(llvm::formatv("required key '{0}' is missing", field.key));
    const json &value = object[field.key];
    // Latencies and reserved memory may be zero; nothing else may.
    bool mayBeZero = llvm::StringRef(field.key).ends_with("latency_us") ||
                     llvm::StringRef(field.key).starts_with("reserved");
    if (!value.is_number() || !std::isfinite(value.get<double>()) ||
        value.get<double>() < 0 || (!mayBeZero && value.get<double>() == 0))
      return error(
          llvm::formatv("key '{0}' must be a {1} number, got {2}", field.key,
                        mayBeZero ? "non-negative" : "positive", value.dump()));
    if (field.integer) {
      if (!value.is_number_integer() || value.get<double>() >= 1e9)
        return error(llvm::formatv(
            "key '{0}' must be a positive integer below 10^9, got {1}",
            field.key, value.dump()));
      *field.integer = value.get<int64_t>();
    } else {
      // In the file's units (TFLOP/s, GB/s, GB, us), a value outside this
      // range is a typo, and would only print steps of 10^285 s.
      constexpr double kSmallest = 1e-6, kLargest = 1e9;
      double number = value.get<double>();
      if ((number != 0 && number < kSmallest) || number > kLargest)
        return error(llvm::formatv("key '{0}' = {1} is outside the plausible "
                                   "range [1e-6, 1e9]",
                                   field.key, value.dump()));
      *field.number = number * field.scale;
    }
    if (llvm::StringRef(field.key).ends_with("efficiency") &&
        value.get<double>() > 1)
      return error(llvm::formatv("key '{0}' is a fraction of peak, at most "
                                 "1, got {1}",
                                 field.key, value.dump()));
  }
  if (cluster.gpus % cluster.gpusPerNode != 0)
    return error(llvm::formatv("'gpus' ({0}) is not a whole number of nodes "
                               "of 'gpus_per_node' ({1})",
                               cluster.gpus, cluster.gpusPerNode));
  if (cluster.reservedBytes >= cluster.hbmBytes)
    return error("'reserved_memory_gb' leaves no memory of 'hbm_gb'");
  return cluster;
}
