//===- TokenData.cpp - token files and batch sampling ---------------------===//

#include "moert/TokenData.h"
#include "moert/Error.h"
#include "moert/Files.h"

#include <cstring>
#include <limits>

namespace {

constexpr int64_t kTokenFileHeaderBytes = 256 * sizeof(int32_t);

/// llm.c's token files (dev/data/data_common.py): GPT-2's uint16 tokens,
/// and Llama 3's uint32 ones, for vocabularies past 65536.
struct TokenFileFormat {
  int32_t magic, version;
  int64_t tokenBytes;
  /// The file size that `count` tokens take.
  int64_t bytesFor(int64_t count) const {
    return kTokenFileHeaderBytes + tokenBytes * count;
  }
};
constexpr TokenFileFormat kTokenFileFormats[] = {{20240520, 1, 2},
                                                 {20240801, 7, 4}};

} // namespace

moert::DataTokens moert::readTokens(const std::string &path) {
  return parseTokens(readRegularFile(path, "data file"), path);
}

void moert::checkVocabulary(const std::vector<int32_t> &tokens, int64_t vocab,
                            const std::string &path) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      fail("{}: token {} is {}, outside the model's vocabulary of {} (is "
           "this the model's data?)",
           path, i, tokens[i], vocab);
}

moert::DataTokens moert::parseTokens(const std::vector<char> &bytes,
                                     const std::string &path) {
  int32_t header[3] = {0, 0, 0};
  if (bytes.size() >= sizeof(header))
    std::memcpy(header, bytes.data(), sizeof(header));
  int64_t count = header[2];
  const TokenFileFormat *format = nullptr;
  for (const TokenFileFormat &known : kTokenFileFormats)
    if (header[0] == known.magic)
      format = &known;
  if (!format) {
    // A file laid out as a token file (version, count, size) whose magic is
    // wrong is a damaged token file, not text.
    for (const TokenFileFormat &known : kTokenFileFormats)
      if (header[1] == known.version && count >= 0 &&
          static_cast<int64_t>(bytes.size()) == known.bytesFor(count))
        fail("{}: laid out as an llm.c token file of {} tokens, but its magic "
             "is {}, not {}",
             path, count, header[0], known.magic);
    // Any other file is text: one token per byte.
    const auto *begin = reinterpret_cast<const unsigned char *>(bytes.data());
    return {std::vector<int32_t>(begin, begin + bytes.size()), true};
  }
  if (header[1] != format->version)
    fail("{}: token file version {} is not supported ({} is, for magic {})",
         path, header[1], format->version, format->magic);
  int64_t expected = format->bytesFor(count);
  if (count < 0 || static_cast<int64_t>(bytes.size()) != expected)
    fail("{}: token file header says {} tokens ({} bytes) but the file has {} "
         "bytes",
         path, count, expected, bytes.size());
  DataTokens tokens{std::vector<int32_t>(count), false};
  const char *data = bytes.data() + kTokenFileHeaderBytes;
  // One loop per token width, not a branch per token.
  auto read = [&](auto width) {
    using Token = decltype(width);
    for (int64_t i = 0; i < count; ++i) {
      Token token;
      std::memcpy(&token, data + sizeof(Token) * i, sizeof(Token));
      if (int64_t(token) > std::numeric_limits<int32_t>::max())
        fail("{}: token {} is {}, beyond any vocabulary", path, i, token);
      tokens.ids[i] = static_cast<int32_t>(token);
    }
  };
  if (format->tokenBytes == 2)
    read(uint16_t());
  else
    read(uint32_t());
  return tokens;
}

int64_t moert::validationTokens(int64_t count, double valFraction) {
  return static_cast<int64_t>(static_cast<double>(count) * valFraction);
}

std::string moert::tokensFingerprint(const std::vector<int32_t> &tokens) {
  // Eight independent lanes hide mix64's latency: about 1 ns a token on
  // one core, less than reading and converting it took.
  constexpr size_t kLanes = 8;
  uint64_t lanes[kLanes] = {1, 2, 3, 4, 5, 6, 7, 8};
  size_t count = tokens.size(), whole = count - count % kLanes;
  for (size_t i = 0; i < whole; i += kLanes)
    for (size_t lane = 0; lane < kLanes; ++lane)
      lanes[lane] =
          mix64(lanes[lane] ^ static_cast<uint32_t>(tokens[i + lane]));
  for (size_t i = whole; i < count; ++i)
    lanes[i - whole] =
        mix64(lanes[i - whole] ^ static_cast<uint32_t>(tokens[i]));
  uint64_t digest = mix64(count);
  for (uint64_t lane : lanes)
    digest = mix64(digest ^ lane);
  return fmt::format("{} tokens #{:016x}", count, digest);
}

moert::BatchSampler::BatchSampler(std::vector<int32_t> tokensArg,
                                  int64_t seqLenArg, uint64_t seed,
                                  const std::string &what)
    : tokens(std::move(tokensArg)), seqLen(seqLenArg),
      offsets(seed, "batch-offsets") {
  if (seqLen <= 0)
    fail("{}: sequence length must be positive, got {}", what, seqLen);
  if (static_cast<int64_t>(tokens.size()) < seqLen + 1)
    fail("{}: data has {} tokens, fewer than one window of {}", what,
         tokens.size(), seqLen + 1);
}

int64_t moert::windowsInOrder(int64_t count, int64_t seqLen) {
  return count > 0 ? (count - 1) / seqLen : 0;
}

namespace {
/// Appends the window of `tokens` at `start` to `batch`: its first seqLen
/// tokens as inputs, its last seqLen as targets.
void appendWindow(moert::TokenBatch &batch, const std::vector<int32_t> &tokens,
                  uint64_t start) {
  auto first = tokens.begin() + start;
  batch.inputs.insert(batch.inputs.end(), first, first + batch.seqLen);
  batch.targets.insert(batch.targets.end(), first + 1,
                       first + batch.seqLen + 1);
}
} // namespace

moert::TokenBatch moert::windowBatch(const std::vector<int32_t> &tokens,
                                     int64_t seqLen, int64_t first,
                                     int64_t batch) {
  TokenBatch result{batch, seqLen, {}, {}};
  for (int64_t w = first; w < first + batch; ++w)
    appendWindow(result, tokens, w * seqLen);
  return result;
}

moert::TokenBatch moert::BatchSampler::next(int64_t batch) {
  TokenBatch result{batch, seqLen, {}, {}};
  uint64_t windows = tokens.size() - static_cast<uint64_t>(seqLen);
  for (int64_t b = 0; b < batch; ++b)
    appendWindow(result, tokens, offsets.below(windows));
  return result;
}
