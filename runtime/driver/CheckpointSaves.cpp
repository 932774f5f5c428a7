//===- CheckpointSaves.cpp - where a run's checkpoints go -----------------===//

#include "CheckpointSaves.h"

#include "moert/Checkpoint.h"
#include "moert/Error.h"
#include "moert/Files.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <cctype>
#include <map>

#include <dirent.h>

namespace moert {

void requireCheckpointPattern(const std::string &pattern) {
  size_t first = pattern.find(kStepPlaceholder);
  if (first == std::string::npos)
    return;
  if (pattern.find(kStepPlaceholder, first + 1) != std::string::npos)
    fail("option --checkpoint {}: names {} twice (once makes a file per "
         "save, named by its step)",
         pattern, kStepPlaceholder);
  if (pattern.find('/', first) != std::string::npos)
    fail("option --checkpoint {}: {} must be in the file's name, not a "
         "folder's (FOLDER/step{}.safetensors, FOLDER there before the run)",
         pattern, kStepPlaceholder, kStepPlaceholder);
}

CheckpointSaves::CheckpointSaves(std::string pattern, const moe_model &model,
                                 const RankGroup &group, int64_t firstStep,
                                 int64_t lastStep, bool severalSaves,
                                 const std::vector<FileOption> &inputs,
                                 bool primary)
    : pattern(std::move(pattern)) {
  if (!primary)
    return;
  if (!isSeries()) {
    requireReplaceableCheckpoint(this->pattern);
    lock.emplace(this->pattern);
    requireNoLaterCheckpoint(this->pattern, model, firstStep);
  } else {
    // One lock for the series: the pattern's, which removes what killed
    // writers of any of its files left.
    lock.emplace(this->pattern, [this](std::string_view name) {
      return stepOf(name).has_value();
    });
    checkSeries(model, firstStep, lastStep, inputs);
  }
  // A series' saves are new files, whose room past the next one is the
  // user's to keep.
  requireRoomForCheckpoint(*lock, model, group, severalSaves && !isSeries());
  if (int removed = lock->removedTemporaries())
    fmt::print("removed {} temporary file{} of interrupted checkpoint "
               "writes beside {}\n",
               removed, removed == 1 ? "" : "s", this->pattern);
}

void CheckpointSaves::checkSeries(const moe_model &model, int64_t firstStep,
                                  int64_t lastStep,
                                  const std::vector<FileOption> &inputs) {
  // The series' files by step, read from the folder once.
  // Named as the pattern names its folder.
  std::string folder = pattern.substr(0, pattern.rfind('/') + 1);
  std::map<int64_t, std::string> files;
  if (DIR *entries = opendir(parentDirectory(pattern).c_str())) {
    while (dirent *entry = readdir(entries))
      if (std::optional<int64_t> step = stepOf(entry->d_name))
        files[*step] = folder + entry->d_name;
    closedir(entries);
  }
  // The saves of this training past the run's first step that it could
  // replace (its own or a stop's), refused together.
  std::vector<std::string> later;
  for (const auto &[step, path] : files) {
    if (step <= firstStep || step > lastStep)
      continue;
    requireDistinctFiles({{"--checkpoint", path}}, inputs);
    requireReplaceableCheckpoint(path);
    if (laterCheckpointStep(path, model, firstStep))
      later.push_back(path);
  }
  if (later.empty())
    return;
  // The one to resume: the latest save of this training, past the run's
  // last step too.
  std::string latest = later.back();
  for (auto file = files.rbegin();
       file != files.rend() && file->first > lastStep; ++file)
    if (laterCheckpointStep(file->second, model, firstStep)) {
      latest = file->second;
      break;
    }
  fail("{}: hold{} later steps of this model's training than this run's "
       "first, step {}, and its saves could replace them: continue it with "
       "--resume {}, or remove the saves after step {} (or give another "
       "--checkpoint) to start again",
       fmt::join(later, ", "), later.size() == 1 ? "s" : "", firstStep, latest,
       firstStep);
}

std::string CheckpointSaves::pathOf(int64_t step) const {
  std::string path = pattern;
  if (size_t at = path.find(kStepPlaceholder); at != std::string::npos)
    path.replace(at, kStepPlaceholder.size(), std::to_string(step));
  return path;
}

bool CheckpointSaves::isSeries() const {
  return pattern.find(kStepPlaceholder) != std::string::npos;
}

std::optional<int64_t> CheckpointSaves::stepOf(std::string_view name) const {
  std::string_view file = pattern;
  file.remove_prefix(
      file.rfind('/') == std::string_view::npos ? 0 : file.rfind('/') + 1);
  size_t at = file.find(kStepPlaceholder);
  std::string_view prefix = file.substr(0, at),
                   suffix = file.substr(at + kStepPlaceholder.size());
  if (name.size() <= prefix.size() + suffix.size() ||
      name.substr(0, prefix.size()) != prefix ||
      name.substr(name.size() - suffix.size()) != suffix)
    return std::nullopt;
  std::string_view digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  // The decimal numbers pathOf writes: no sign, no leading zero.
  if (digits.size() > 18 || (digits.size() > 1 && digits[0] == '0'))
    return std::nullopt;
  int64_t step = 0;
  for (char digit : digits) {
    if (!std::isdigit(static_cast<unsigned char>(digit)))
      return std::nullopt;
    step = step * 10 + (digit - '0');
  }
  return step;
}

} // namespace moert
