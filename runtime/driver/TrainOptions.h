//===- TrainOptions.h - the training driver's command line ------*- C++ -*-===//
//
// Every number parses strictly: the whole argument, within its range, or an
// error naming the option (`--steps 1e3` is not 1 step).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_TRAINOPTIONS_H
#define MOERT_DRIVER_TRAINOPTIONS_H

#include <cstdint>
#include <set>
#include <string>

namespace moert {

struct TrainOptions {
  std::string data = "/usr/share/games/fortunes/fortunes";
  int64_t steps = 2000;
  int64_t evalInterval = 100;
  /// 0: every window of the validation tokens (--eval-batches all).
  int64_t evalBatches = 8;
  double valFraction = 0.1;
  /// Validation data of its own; --data then trains whole.
  std::string valData;
  uint64_t seed = 0;
  /// 0: every core.
  int64_t threads = 0;
  std::string checkpoint;
  int64_t checkpointInterval = 0;
  std::string resume;
  std::string initFrom;
  std::string metrics;
  int64_t sampleTokens = 200;
  double temperature = 0.8;
  int64_t topK = 40;
  std::string prompt = "\n";
  int64_t logInterval = 10;
  int64_t similarityInterval = 100;
  /// No training: validate, measure and sample the loaded weights.
  bool skipTrain = false;
  /// The options on the command line, by name ("seed"), defaults aside.
  std::set<std::string> given;

  bool isGiven(const std::string &name) const { return given.count(name) > 0; }
};

/// moe-optimizer's decay-steps as a model's `training` settings record it
/// (moe_model.training), or 0 where they record none or a constant rate
/// after warmup.
int64_t scheduledSteps(const std::string &training);

/// Parses the command line; prints the usage and exits on --help, throws
/// moert::Error on anything it cannot take. `scheduledSteps` (0: none) is
/// the default of --steps.
TrainOptions parseTrainOptions(int argc, char **argv, int64_t scheduledSteps);

} // namespace moert

#endif // MOERT_DRIVER_TRAINOPTIONS_H
