//===- TextBatches.h - byte-token batches from a text file ------*- C++ -*-===//
//
// The simplest real corpus: every byte of a file is a token (vocabulary 256).
// A batch is `batch` windows of `seqLen + 1` contiguous bytes at seeded random
// offsets; inputs are the first seqLen bytes, targets the last seqLen.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TEXTBATCHES_H
#define MOERT_TEXTBATCHES_H

#include "moert/Random.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

struct TokenBatch {
  int64_t batch = 0, seqLen = 0;
  std::vector<int32_t> inputs;  // [batch, seqLen]
  std::vector<int32_t> targets; // [batch, seqLen], inputs shifted by one
};

class TextBatches {
public:
  /// Loads `path`; throws moert::Error if it is missing or shorter than one
  /// window of seqLen + 1 bytes.
  TextBatches(const std::string &path, int64_t seqLen, uint64_t seed);

  TokenBatch next(int64_t batch);
  size_t size() const { return tokens.size(); }

private:
  std::vector<uint8_t> tokens;
  int64_t seqLen;
  Stream offsets;
};

} // namespace moert

#endif // MOERT_TEXTBATCHES_H
