//===- MicroBatches.cpp - a step's figures from its micro-batches' ------===//

#include "moert/MicroBatches.h"

nlohmann::json
moert::meanOverMicroBatches(const std::vector<nlohmann::json> &lines) {
  nlohmann::json step = lines.back();
  if (lines.size() == 1)
    return step;
  for (auto &[key, value] : step.items()) {
    std::vector<const nlohmann::json *> reports;
    for (const nlohmann::json &line : lines)
      if (auto it = line.find(key); it != line.end())
        reports.push_back(&*it);
    auto mean = [&](auto element) {
      double sum = 0;
      for (const nlohmann::json *report : reports)
        sum += element(*report).template get<double>();
      return sum / static_cast<double>(reports.size());
    };
    if (value.is_number()) {
      value = mean([](const nlohmann::json &v) { return v; });
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i)
        if (value[i].is_number())
          value[i] = mean([&](const nlohmann::json &v) { return v.at(i); });
    }
  }
  return step;
}
