//===- MicroBatches.h - an optimizer step's figures from its micro-batches ===//
//
// A model compiled with micro-batches (moe-accumulate-gradients) reports
// its loss and metrics per micro-batch; the training binaries and moe-run
// report the step's as their means, so that a step of N micro-batches of B
// sequences reads like a step of N x B sequences (the loss exactly so, as
// every micro-batch counts the same number of targets).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_MICROBATCHES_H
#define MOERT_MICROBATCHES_H

#include <nlohmann/json.hpp>

#include <vector>

namespace moert {

/// The figures of an optimizer step from those of its micro-batches, in
/// order (the last is the train step's, which alone has the optimizer's):
/// each number, and each element of a list of numbers, is the mean over
/// the micro-batches that report it. One micro-batch's figures are the
/// step's as they are.
nlohmann::json meanOverMicroBatches(const std::vector<nlohmann::json> &lines);

} // namespace moert

#endif // MOERT_MICROBATCHES_H
