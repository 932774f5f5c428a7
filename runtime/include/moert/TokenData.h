//===- TokenData.h - token files and batch sampling -------------*- C++ -*-===//
//
// Training data is a sequence of tokens: an llm.c token file (a header of
// 256 int32 - magic, version, token count - followed by the tokens: magic
// 20240520, version 1, uint16 tokens as for GPT-2; magic 20240801, version
// 7, uint32 tokens as for Llama 3) or, for any other file, its bytes
// (vocabulary 256). A batch
// is `batch` windows of seqLen + 1 contiguous tokens at seeded random
// offsets; inputs are the first seqLen tokens, targets the last seqLen.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_TOKENDATA_H
#define MOERT_TOKENDATA_H

#include "moert/Random.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

/// A data file's tokens: its bytes (text), or the ids of an llm.c token
/// file, whose tokenizer the binaries do not have.
struct DataTokens {
  std::vector<int32_t> ids;
  bool text = true;
};

/// The tokens of `path`; throws moert::Error if it cannot be read or is a
/// malformed token file.
DataTokens readTokens(const std::string &path);
/// The tokens of `bytes`, the contents of the data file `path`.
DataTokens parseTokens(const std::vector<char> &bytes, const std::string &path);

/// Throws moert::Error naming `path` and the first token of `tokens` (the
/// whole data, validation split included) that is no id of a vocabulary of
/// `vocab`.
void checkVocabulary(const std::vector<int32_t> &tokens, int64_t vocab,
                     const std::string &path);

/// How many tokens at the end of `count` a run holds out for validation
/// (--val-fraction); the training split is the tokens before them.
int64_t validationTokens(int64_t count, double valFraction);
/// The largest --val-fraction: at least half of the data trains.
constexpr double kMaxValFraction = 0.5;

/// "N tokens #HEX", a digest of every token: checkpoints save the training
/// split's, so that a run resumed on other data says so (its sampler
/// position was drawn for the old data).
std::string tokensFingerprint(const std::vector<int32_t> &tokens);

struct TokenBatch {
  int64_t batch = 0, seqLen = 0;
  std::vector<int32_t> inputs;  // [batch, seqLen]
  std::vector<int32_t> targets; // [batch, seqLen], inputs shifted by one
};

/// How many windows of seqLen + 1 tokens, each starting where the last one's
/// inputs end, `count` tokens hold: every token after the first is a target
/// once.
int64_t windowsInOrder(int64_t count, int64_t seqLen);
/// Windows [first, first + batch) of those in order of `tokens`.
TokenBatch windowBatch(const std::vector<int32_t> &tokens, int64_t seqLen,
                       int64_t first, int64_t batch);

class BatchSampler {
public:
  /// Samples windows of `tokens`; `what` names the data in errors. Throws
  /// moert::Error if seqLen is not positive or there is no full window.
  BatchSampler(std::vector<int32_t> tokens, int64_t seqLen, uint64_t seed,
               const std::string &what);
  /// All tokens of the file at `path`.
  BatchSampler(const std::string &path, int64_t seqLen, uint64_t seed)
      : BatchSampler(readTokens(path).ids, seqLen, seed, path) {}

  TokenBatch next(int64_t batch);
  size_t size() const { return tokens.size(); }
  /// The position in the offset stream, which `next` draws once a window:
  /// the windows sampled so far (a run's consumed samples, whatever batch
  /// sizes it resumed with). Saved in checkpoints, so a resumed run draws
  /// the batches an uninterrupted one would.
  uint64_t getPosition() const { return offsets.getPosition(); }
  void setPosition(uint64_t position) { offsets.setPosition(position); }

private:
  std::vector<int32_t> tokens;
  int64_t seqLen;
  Stream offsets;
};

} // namespace moert

#endif // MOERT_TOKENDATA_H
