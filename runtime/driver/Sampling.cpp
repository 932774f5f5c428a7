//===- Sampling.cpp - the generated sample that ends a run ----------------===//

#include "Sampling.h"

#include "moert/Error.h"
#include "moert/Random.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace {

/// The ids --prompt lists for a token file, each in the vocabulary.
std::vector<int32_t> promptIds(const std::string &prompt, int64_t vocab) {
  std::vector<int32_t> ids;
  size_t at = 0;
  while ((at = prompt.find_first_not_of(" ,\t\n", at)) != std::string::npos) {
    size_t end = prompt.find_first_of(" ,\t\n", at);
    std::string word = prompt.substr(at, end - at);
    char *rest = nullptr;
    long long id = std::strtoll(word.c_str(), &rest, 10);
    if (!std::isdigit(static_cast<unsigned char>(word[0])) || *rest != '\0')
      moert::fail("option --prompt: '{}' is no token id (the data is an llm.c "
                  "token file, whose tokenizer this binary does not have: "
                  "give token ids separated by spaces)",
                  word);
    if (id >= vocab)
      moert::fail("option --prompt: token id {} is outside the vocabulary of "
                  "{}",
                  word, vocab);
    ids.push_back(static_cast<int32_t>(id));
    at = end;
  }
  if (ids.empty())
    moert::fail("option --prompt: no token id in '{}'", prompt);
  return ids;
}

} // namespace

std::optional<std::vector<int32_t>>
moert::promptTokens(const TrainOptions &options, bool text, int32_t firstToken,
                    int64_t vocab) {
  if (!text)
    return options.isGiven("prompt") ? promptIds(options.prompt, vocab)
                                     : std::vector<int32_t>{firstToken};
  // Bytes are tokens 0-255, whatever the sign of char.
  std::vector<int32_t> bytes;
  for (unsigned char byte : options.prompt) {
    if (byte < vocab) {
      bytes.push_back(byte);
      continue;
    }
    if (options.isGiven("prompt"))
      fail("option --prompt: byte {} is outside the vocabulary of {}",
           std::isprint(byte) ? fmt::format("'{}' ({})", char(byte), byte)
                              : std::to_string(byte),
           vocab);
    // Not the user's doing: a toy vocabulary without the newline.
    fmt::print("note: no sample at the end: the default prompt (a newline) is "
               "outside the vocabulary of {}; give --prompt\n",
               vocab);
    return std::nullopt;
  }
  return bytes;
}

std::vector<int32_t> moert::sampleTokens(const LogitsOfWindow &logitsOf,
                                         std::vector<int32_t> prompt,
                                         int64_t seqLen, int64_t vocab,
                                         const TrainOptions &options,
                                         const std::function<bool()> &stopped) {
  std::vector<int32_t> context = std::move(prompt), window;
  Stream stream(options.seed, "sampling");
  std::vector<std::pair<float, int32_t>> candidates(vocab);
  int64_t keep = options.topK > 0 ? std::min(options.topK, vocab) : vocab;
  std::vector<double> weights(keep);
  size_t promptLength = context.size();
  for (int64_t n = 0; n < options.sampleTokens && !stopped(); ++n) {
    int64_t length = std::min<int64_t>(context.size(), seqLen);
    window.assign(context.end() - length, context.end());
    const float *row = logitsOf(window) + (length - 1) * vocab;
    for (int64_t v = 0; v < vocab; ++v)
      candidates[v] = {row[v], static_cast<int32_t>(v)};
    std::partial_sort(candidates.begin(), candidates.begin() + keep,
                      candidates.end(), std::greater<>());
    double total = 0;
    for (int64_t k = 0; k < keep; ++k)
      total += weights[k] = std::exp(
          (candidates[k].first - candidates[0].first) / options.temperature);
    double draw = stream.uniform() * total;
    int64_t chosen = 0;
    while (chosen + 1 < keep && (draw -= weights[chosen]) > 0)
      ++chosen;
    context.push_back(candidates[chosen].second);
  }
  return std::vector<int32_t>(context.begin() + promptLength, context.end());
}

std::string moert::formatTokens(const std::vector<int32_t> &tokens, bool text) {
  std::string out;
  for (int32_t token : tokens) {
    if (text && token < 256)
      out.push_back(static_cast<char>(token));
    else if (text)
      out += fmt::format("<{}>", token);
    else
      out += fmt::format("{}{}", out.empty() ? "" : " ", token);
  }
  return out;
}
