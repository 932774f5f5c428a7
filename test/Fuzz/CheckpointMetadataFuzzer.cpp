//===- CheckpointMetadataFuzzer.cpp - a checkpoint's run metadata ---------===//
//
// The "moe" metadata of a checkpoint is JSON from a file: any text either
// gives a run position or throws moert::Error (never another exception),
// and its training settings compare with a binary's.
//
//===----------------------------------------------------------------------===//

#include "moert/Checkpoint.h"
#include "moert/Error.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::map<std::string, std::string> metadata = {
      {"format", "moe-checkpoint-v1"},
      {"moe", std::string(reinterpret_cast<const char *>(data), size)}};
  try {
    moert::CheckpointRun run =
        moert::parseCheckpointRun("fuzz.safetensors", metadata);
    if (run.position.step < 0)
      __builtin_trap();
    // The recorded settings, compared as a resume compares them.
    moert::trainingChanges(run.training, "moe-optimizer.lr=1.000000e-03");
  } catch (const moert::Error &) {
  }
  return 0;
}
