//===- TrainData.h - a run's training and validation tokens -----*- C++ -*-===//
//
// A run trains on --data and validates on the tail --val-fraction holds out
// of it, or, with --val-data (nanoGPT's and llm.c's val.bin beside
// train.bin), trains on all of --data and validates on that file.
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
  /// --data's first token: a token file's default prompt.
  int32_t firstToken = 0;
  /// Where the validation tokens come from: --data's tail, or --val-data.
  std::string validationFile;
};

/// The tokens of `options`' data files, every one an id of a vocabulary of
/// `vocab` (0: any); throws moert::Error naming the file and the option when
/// one cannot be read, holds a token outside the vocabulary, is of the other
/// kind than --data (text or token file), or leaves the validation tokens
/// less than one window of `seqLen + 1`.
TrainData readTrainData(const TrainOptions &options, int64_t vocab,
                        int64_t seqLen);

} // namespace moert

#endif // MOERT_DRIVER_TRAINDATA_H
