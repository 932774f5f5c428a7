//===- Sampling.h - the generated sample that ends a run --------*- C++ -*-===//
//
// A run ends with its prompt continued token by token, each drawn from the
// top-k logits of the last position at a temperature. Text data's tokens
// are its bytes, so prompt and sample are text; an llm.c token file's are
// ids of a tokenizer the binary does not have, so prompt and sample are ids.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_SAMPLING_H
#define MOERT_DRIVER_SAMPLING_H

#include "TrainOptions.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moert {

/// The tokens the sample continues, for a model of `vocab` tokens: the
/// bytes of --prompt for text data; for a token file, the ids --prompt lists
/// (separated by spaces or commas), by default `firstToken`, the data's
/// first (llm.c's files begin each document with <|endoftext|>). Throws
/// moert::Error for a --prompt the vocabulary lacks; nullopt (with a note)
/// when the default prompt is outside it.
std::optional<std::vector<int32_t>> promptTokens(const TrainOptions &options,
                                                 bool text, int32_t firstToken,
                                                 int64_t vocab);

/// The logits [seqLen, vocab] of the window `tokens` (at most seqLen long;
/// causal attention leaves the positions after it out).
using LogitsOfWindow =
    std::function<const float *(const std::vector<int32_t> &tokens)>;

/// --sample-tokens tokens continuing `prompt`, fewer if `stopped` (asked
/// before each token: every rank's logits take part) says a signal asks
/// the run to stop.
std::vector<int32_t> sampleTokens(const LogitsOfWindow &logitsOf,
                                  std::vector<int32_t> prompt, int64_t seqLen,
                                  int64_t vocab, const TrainOptions &options,
                                  const std::function<bool()> &stopped);

/// `tokens` as text data spells them (a token past 255, which no byte is,
/// as `<id>`) or, for a token file, as ids separated by spaces.
std::string formatTokens(const std::vector<int32_t> &tokens, bool text);

} // namespace moert

#endif // MOERT_DRIVER_SAMPLING_H
