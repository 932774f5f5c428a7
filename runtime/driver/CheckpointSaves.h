//===- CheckpointSaves.h - where a run's checkpoints go ---------*- C++ -*-===//
//
// --checkpoint names one file, which each save replaces (nanoGPT's ckpt.pt),
// or, where the path holds `{step}`, a file per save named by its step and
// kept (Megatron-LM's iter_N folders): a run that went wrong can go back to
// any save, and each can be evaluated. What the saves would replace is
// checked, and the writer's lock taken, before step 1.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_CHECKPOINTSAVES_H
#define MOERT_DRIVER_CHECKPOINTSAVES_H

#include "moert/AtomicFile.h"
#include "moert/GlobalPlacement.h"
#include "moert/ModelAbi.h"

#include <cstdint>
#include <optional>
#include <string>

namespace moert {

/// The placeholder of a save's step in --checkpoint.
inline constexpr std::string_view kStepPlaceholder = "{step}";

/// Throws moert::Error where `pattern` names `{step}` more than once.
void requireCheckpointPattern(const std::string &pattern);

class CheckpointSaves {
public:
  /// The saves to `pattern` of a run from step `firstStep` to `lastStep`
  /// that saves every `interval` steps (0: at the end only). On rank 0
  /// (`primary`), refuses files the saves would replace that are no
  /// checkpoints or hold a later step of this model's training, and a file
  /// system without room for them, and takes the writer's lock.
  CheckpointSaves(std::string pattern, const moe_model &model,
                  const RankGroup &group, int64_t firstStep, int64_t lastStep,
                  int64_t interval, bool primary);

  /// The file of the save of `step`.
  std::string pathOf(int64_t step) const;

  /// The file of the save of `step`, which a stop may ask for at any step:
  /// refuses on rank 0 to replace a file there that is no checkpoint where
  /// that was not checked before step 1.
  std::string pathToWrite(int64_t step) const;

  /// Whether each save has a file of its own.
  bool keepsEverySave() const;

private:
  /// Whether the saves checked before step 1 include `step`'s file.
  bool isScheduled(int64_t step) const;

  std::string pattern;
  int64_t lastStep, interval;
  bool primary;
  std::optional<WriterLock> lock;
};

} // namespace moert

#endif // MOERT_DRIVER_CHECKPOINTSAVES_H
