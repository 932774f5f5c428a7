//===- TrainData.cpp - a run's training and validation tokens -------------===//

#include "TrainData.h"
#include "moert/Error.h"
#include "moert/TokenData.h"

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>

namespace {

/// A data file's tokens, in the model's vocabulary.
moert::DataTokens readInVocabulary(const std::string &path, int64_t vocab) {
  moert::DataTokens tokens = moert::readTokens(path);
  if (vocab > 0)
    moert::checkVocabulary(tokens.ids, vocab, path);
  return tokens;
}

/// Fails unless `tokens` of `path` (its `part`) hold one window.
void requireWindow(const std::vector<int32_t> &tokens, int64_t seqLen,
                   const std::string &path, const std::string &part,
                   const char *advice = "") {
  if (static_cast<int64_t>(tokens.size()) < seqLen + 1)
    moert::fail("{}: {} has {} tokens, fewer than one window of {}{}", path,
                part, tokens.size(), seqLen + 1, advice);
}

/// nanoGPT's .bin files are uint16 tokens without llm.c's header, which a
/// reader takes for text. Each token below 256 has a zero high byte: in
/// GPT-2 tokens of prose, 7-8% of the bytes (13-16% of the tokens are
/// single characters). UTF-8 text has no zero byte, random bytes 0.4%.
std::string headerlessTokensNote(const moert::DataTokens &tokens,
                                 const std::string &path) {
  if (!tokens.text || tokens.ids.empty())
    return "";
  size_t zeros = std::count(tokens.ids.begin(), tokens.ids.end(), 0);
  if (zeros * 100 < tokens.ids.size())
    return "";
  return fmt::format(
      "note: {} is read as text (a token a byte), but {:.0f}% of its bytes "
      "are zero: is it a file of uint16 tokens without llm.c's header "
      "(magic 20240520), as nanoGPT writes, or UTF-16 text? Neither is read "
      "as such\n",
      path, 100.0 * zeros / tokens.ids.size());
}

/// A model with more than a byte's 256 tokens learns only byte ids from
/// text: its tokenizer's ids come in an llm.c token file.
std::string textVocabularyNote(const moert::DataTokens &tokens,
                               const std::string &path, int64_t vocab) {
  if (!tokens.text || vocab <= 256)
    return "";
  return fmt::format(
      "note: {} is read as text, a token a byte (ids 0 to 255), but the "
      "model's vocabulary has {} tokens: a tokenizer's tokens come in an "
      "llm.c token file\n",
      path, vocab);
}

/// What to say of a data file as the run reads it.
std::string dataNotes(const moert::DataTokens &tokens, const std::string &path,
                      int64_t vocab) {
  return headerlessTokensNote(tokens, path) +
         textVocabularyNote(tokens, path, vocab);
}

} // namespace

moert::TrainData moert::readTrainData(const TrainOptions &options,
                                      int64_t vocab, int64_t seqLen) {
  TrainData run;
  bool separate = !options.valData.empty();
  if (!(separate && options.skipTrain)) {
    DataTokens data = readInVocabulary(options.data, vocab);
    run.note = dataNotes(data, options.data, vocab);
    run.text = data.text;
    run.train = std::move(data.ids);
  }
  if (!separate) {
    int64_t validation = validationTokens(
        static_cast<int64_t>(run.train.size()), options.valFraction);
    run.validation.assign(run.train.end() - validation, run.train.end());
    run.train.resize(run.train.size() - validation);
    run.validationFile = options.data;
    requireWindow(run.validation, seqLen, options.data,
                  fmt::format("its validation split (--val-fraction {})",
                              options.valFraction),
                  ": give more data, a larger --val-fraction or a --val-data "
                  "file");
  } else {
    if (!options.skipTrain) {
      requireWindow(run.train, seqLen, options.data, "--data");
      std::error_code error;
      if (std::filesystem::equivalent(options.data, options.valData, error))
        fail("{}: given as both --data and --val-data: validation would "
             "measure the tokens training fits",
             options.valData);
    }
    DataTokens validation = readInVocabulary(options.valData, vocab);
    run.note += dataNotes(validation, options.valData, vocab);
    auto kind = [](bool text) {
      return text ? "a text file (its bytes are the tokens)"
                  : "an llm.c token file";
    };
    if (options.skipTrain)
      run.text = validation.text;
    else if (validation.text != run.text)
      fail("{}: --val-data is {}, but --data {} is {}: give both in one "
           "format",
           options.valData, kind(validation.text), options.data,
           kind(run.text));
    run.validation = std::move(validation.ids);
    run.validationFile = options.valData;
    requireWindow(run.validation, seqLen, options.valData, "--val-data");
  }
  // The validation tokens hold a window, and --data's (if read) precede
  // them.
  run.firstToken = run.train.empty() ? run.validation[0] : run.train[0];
  return run;
}
