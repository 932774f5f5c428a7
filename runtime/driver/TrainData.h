//===- TrainData.h - a run's training and validation tokens -----*- C++ -*-===//
//
// A run trains on --data and validates on the tail --val-fraction holds out
// of it, or, with --val-data (llm.c's _val.bin beside its _train.bin),
// trains on all of --data and validates on that file; --skip-train with
// --val-data reads that file alone.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_TRAINDATA_H
#define MOERT_DRIVER_TRAINDATA_H

#include "TrainOptions.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

struct TrainData {
  std::vector<int32_t> train, validation;
  /// Whether the tokens are the files' bytes (else llm.c token ids).
  bool text = true;
  /// The first token read: a token file's default prompt.
  int32_t firstToken = 0;
  /// Where the validation tokens come from: --data's tail, or --val-data.
  std::string validationFile;
  /// What a user should know about the files read, or empty.
  std::string note;
};

/// The tokens of `options`' data files, every one an id of a vocabulary of
/// `vocab` (0: any); throws moert::Error naming the file when one cannot be
/// read, holds a token outside the vocabulary, is of the other kind than
/// --data (text or token file), is --data again, or leaves the validation
/// tokens (or --data beside --val-data) less than one window of
/// `seqLen + 1`.
TrainData readTrainData(const TrainOptions &options, int64_t vocab,
                        int64_t seqLen);

} // namespace moert

#endif // MOERT_DRIVER_TRAINDATA_H
