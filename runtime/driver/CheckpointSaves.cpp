//===- CheckpointSaves.cpp - where a run's checkpoints go -----------------===//

#include "CheckpointSaves.h"

#include "moert/Checkpoint.h"
#include "moert/Error.h"

#include <fmt/core.h>

#include <vector>

namespace moert {

void requireCheckpointPattern(const std::string &pattern) {
  size_t first = pattern.find(kStepPlaceholder);
  if (first != std::string::npos &&
      pattern.find(kStepPlaceholder, first + 1) != std::string::npos)
    fail("option --checkpoint {}: names {} twice (once makes a file per "
         "save, named by its step)",
         pattern, kStepPlaceholder);
}

CheckpointSaves::CheckpointSaves(std::string pattern, const moe_model &model,
                                 const RankGroup &group, int64_t firstStep,
                                 int64_t lastStep, int64_t interval,
                                 bool primary)
    : pattern(std::move(pattern)), lastStep(lastStep), interval(interval),
      primary(primary) {
  if (!primary)
    return;
  // The files the scheduled saves write: each interval's and the last
  // step's (a stop's, at another step, is checked as it saves).
  std::vector<int64_t> steps;
  if (keepsEverySave() && interval > 0)
    for (int64_t step = (firstStep / interval + 1) * interval; step < lastStep;
         step += interval)
      steps.push_back(step);
  steps.push_back(lastStep);
  for (int64_t step : steps)
    requireReplaceableCheckpoint(pathOf(step));
  // One lock for all the saves: the pattern's.
  lock.emplace(this->pattern);
  // The latest first: the one to name for --resume.
  for (auto step = steps.rbegin(); step != steps.rend(); ++step)
    requireNoLaterCheckpoint(pathOf(*step), model, firstStep);
  // Saves to one file write each beside the last; kept saves are new files,
  // whose room past the next one the user keeps.
  bool severalSaves =
      !keepsEverySave() && interval > 0 && firstStep + interval < lastStep;
  requireRoomForCheckpoint(*lock, model, group, severalSaves);
  if (int removed = lock->removedTemporaries())
    fmt::print("removed {} temporary file{} of interrupted checkpoint "
               "writes beside {}\n",
               removed, removed == 1 ? "" : "s", this->pattern);
}

std::string CheckpointSaves::pathOf(int64_t step) const {
  std::string path = pattern;
  if (size_t at = path.find(kStepPlaceholder); at != std::string::npos)
    path.replace(at, kStepPlaceholder.size(), std::to_string(step));
  return path;
}

std::string CheckpointSaves::pathToWrite(int64_t step) const {
  std::string path = pathOf(step);
  if (primary && keepsEverySave() && !isScheduled(step))
    requireReplaceableCheckpoint(path);
  return path;
}

bool CheckpointSaves::isScheduled(int64_t step) const {
  return step == lastStep || (interval > 0 && step % interval == 0);
}

bool CheckpointSaves::keepsEverySave() const {
  return pattern.find(kStepPlaceholder) != std::string::npos;
}

} // namespace moert
