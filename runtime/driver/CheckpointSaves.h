//===- CheckpointSaves.h - where a run's checkpoints go ---------*- C++ -*-===//
//
// --checkpoint names one file, which each save replaces (nanoGPT's ckpt.pt),
// or, where the file's name holds `{step}`, a series: a file per save named
// by its step and kept (as Megatron-LM keeps iter_N), so that a run that
// went wrong can go back to any save, and each can be evaluated. What the
// saves could replace is checked, and the writer's lock taken, before
// step 1.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_CHECKPOINTSAVES_H
#define MOERT_DRIVER_CHECKPOINTSAVES_H

#include "moert/AtomicFile.h"
#include "moert/Files.h"
#include "moert/GlobalPlacement.h"
#include "moert/ModelAbi.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moert {

/// The placeholder of a save's step in --checkpoint.
inline constexpr std::string_view kStepPlaceholder = "{step}";

/// Throws moert::Error where `pattern` names `{step}` more than once, or in
/// a folder's name.
void requireCheckpointPattern(const std::string &pattern);

class CheckpointSaves {
public:
  /// The saves to `pattern` of a run from step `firstStep` to `lastStep`.
  /// On rank 0 (`primary`) refuses, before step 1, to replace a file that
  /// is no checkpoint, or that holds a later step of this model's training,
  /// or that is one of `inputs`, where a save may go (the pattern's file;
  /// for a series, every step of the run, as a stop saves at any); refuses
  /// a file system without room for a save; takes the writer's lock.
  /// `severalSaves`: saves follow the first (to one file, each is written
  /// beside the last).
  CheckpointSaves(std::string pattern, const moe_model &model,
                  const RankGroup &group, int64_t firstStep, int64_t lastStep,
                  bool severalSaves, const std::vector<FileOption> &inputs,
                  bool primary);

  /// The file of the save of `step`.
  std::string pathOf(int64_t step) const;

private:
  /// Whether each save has a file of its own.
  bool isSeries() const;
  /// The step that a file named `name`, beside the pattern's, holds in
  /// the series.
  std::optional<int64_t> stepOf(std::string_view name) const;
  void checkSeries(const moe_model &model, int64_t firstStep, int64_t lastStep,
                   const std::vector<FileOption> &inputs);

  std::string pattern;
  std::optional<WriterLock> lock;
};

} // namespace moert

#endif // MOERT_DRIVER_CHECKPOINTSAVES_H
