//===- MicroBatches.cpp - a step's figures from its micro-batches' ------===//

#include "moert/MicroBatches.h"

nlohmann::json moert::meanOfFigures(
    const std::vector<nlohmann::json> &lines,
    const std::function<bool(std::string_view)> &lastValueOnly) {
  nlohmann::json mean = lines.back();
  if (lines.size() == 1)
    return mean;
  for (auto &[key, value] : mean.items()) {
    if (lastValueOnly && lastValueOnly(key))
      continue;
    std::vector<const nlohmann::json *> reports;
    for (const nlohmann::json &line : lines)
      if (auto it = line.find(key); it != line.end())
        reports.push_back(&*it);
    auto meanOf = [&](auto element) {
      double sum = 0;
      for (const nlohmann::json *report : reports)
        sum += element(*report).template get<double>();
      return sum / static_cast<double>(reports.size());
    };
    if (value.is_number()) {
      value = meanOf([](const nlohmann::json &v) { return v; });
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i)
        if (value[i].is_number())
          value[i] = meanOf([&](const nlohmann::json &v) { return v.at(i); });
    }
  }
  return mean;
}

nlohmann::json
moert::meanOverMicroBatches(const std::vector<nlohmann::json> &lines) {
  return meanOfFigures(lines, nullptr);
}
