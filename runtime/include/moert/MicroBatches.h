//===- MicroBatches.h - an optimizer step's figures from its micro-batches ===//
//
// A model compiled with micro-batches (moe-accumulate-gradients) reports
// its loss and metrics per micro-batch; the training binaries and moe-run
// report the step's as their means, so that a step of N micro-batches of B
// sequences reads like a step of N x B sequences (the loss exactly so, as
// every micro-batch counts the same number of targets). The training
// binaries' progress lines show the means of the steps since the last line
// the same way.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_MICROBATCHES_H
#define MOERT_MICROBATCHES_H

#include <nlohmann/json.hpp>

#include <functional>
#include <string_view>
#include <vector>

namespace moert {

/// The figures of several lines as one: each number, and each element of a
/// list of numbers, of the last line is the mean over the lines that report
/// it, but where `lastValueOnly` holds for its key, which keeps the last
/// line's value. One line's figures are as they are.
nlohmann::json
meanOfFigures(const std::vector<nlohmann::json> &lines,
              const std::function<bool(std::string_view)> &lastValueOnly);

/// The figures of an optimizer step from those of its micro-batches, in
/// order (the last is the train step's, which alone has the optimizer's):
/// the means over the micro-batches that report them.
nlohmann::json meanOverMicroBatches(const std::vector<nlohmann::json> &lines);

} // namespace moert

#endif // MOERT_MICROBATCHES_H
