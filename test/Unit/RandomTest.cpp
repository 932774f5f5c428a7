//===- RandomTest.cpp - counter-based random streams and text batches -----===//

#include "moert/Random.h"
#include "moert/TokenData.h"

#include "TestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

using namespace moert;
using namespace moe::test;

//===----------------------------------------------------------------------===//
// mix64, streamKey, uniformAt, normalAt
//===----------------------------------------------------------------------===//

TEST(RandomTest, Mix64MatchesSplitMix64Reference) {
  // SplitMix64's published outputs: from state 0 the first output is
  // 0xe220a8397b1dcdaf; from seed 1234567 the outputs are 6457827717110365317,
  // 3203168211198807973, 9817491932198370423 (state advances by the golden
  // gamma 0x9e3779b97f4a7c15, which mix64 adds itself).
  const uint64_t gamma = 0x9e3779b97f4a7c15ULL;
  EXPECT_EQ(mix64(0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(mix64(1234567), 6457827717110365317ULL);
  EXPECT_EQ(mix64(1234567 + gamma), 3203168211198807973ULL);
  EXPECT_EQ(mix64(1234567 + 2 * gamma), 9817491932198370423ULL);
}

TEST(RandomTest, SameSeedNameAndIndexGiveSameValue) {
  uint64_t key = streamKey(7, "init.layer0");
  EXPECT_EQ(key, streamKey(7, "init.layer0"));
  for (uint64_t i : {0ULL, 1ULL, 12345ULL, ~0ULL}) {
    EXPECT_EQ(uniformAt(key, i), uniformAt(streamKey(7, "init.layer0"), i));
    EXPECT_EQ(normalAt(key, i), normalAt(streamKey(7, "init.layer0"), i));
  }
}

TEST(RandomTest, ValuesDoNotDependOnQueryOrder) {
  uint64_t key = streamKey(3, "order");
  std::vector<double> forward, backward(100);
  for (uint64_t i = 0; i < 100; ++i)
    forward.push_back(uniformAt(key, i));
  for (uint64_t i = 100; i-- > 0;)
    backward[i] = uniformAt(key, i);
  EXPECT_EQ(forward, backward);
}

TEST(RandomTest, DifferentNamesAndSeedsGiveDifferentStreams) {
  uint64_t base = streamKey(1, "a");
  uint64_t otherName = streamKey(1, "b");
  uint64_t otherSeed = streamKey(2, "a");
  uint64_t emptyName = streamKey(1, "");
  EXPECT_NE(base, otherName);
  EXPECT_NE(base, otherSeed);
  EXPECT_NE(base, emptyName);

  int sameName = 0, sameSeed = 0;
  for (uint64_t i = 0; i < 64; ++i) {
    sameName += uniformAt(base, i) == uniformAt(otherName, i);
    sameSeed += uniformAt(base, i) == uniformAt(otherSeed, i);
  }
  EXPECT_EQ(sameName, 0);
  EXPECT_EQ(sameSeed, 0);
}

TEST(RandomTest, NeighbouringIndicesDiffer) {
  uint64_t key = streamKey(0, "x");
  std::set<double> seen;
  for (uint64_t i = 0; i < 1000; ++i)
    seen.insert(uniformAt(key, i));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RandomTest, UniformLiesInUnitIntervalOnA53BitGrid) {
  uint64_t key = streamKey(11, "uniform");
  const int draws = 100000;
  double sum = 0;
  int low = 0;
  for (int i = 0; i < draws; ++i) {
    double u = uniformAt(key, i);
    ASSERT_GE(u, 0.0) << "at " << i;
    ASSERT_LT(u, 1.0) << "at " << i;
    double scaled = std::ldexp(u, 53);
    ASSERT_EQ(scaled, std::floor(scaled)) << "at " << i;
    sum += u;
    low += u < 0.25;
  }
  // Mean 1/2 (std error 0.29/sqrt(1e5) = 0.0009); a quarter below 0.25.
  EXPECT_NEAR(sum / draws, 0.5, 0.005);
  EXPECT_NEAR(static_cast<double>(low) / draws, 0.25, 0.005);
}

TEST(RandomTest, NormalHasZeroMeanAndUnitVariance) {
  uint64_t key = streamKey(5, "normal");
  const int draws = 100000;
  double sum = 0, sumSquares = 0;
  int withinOneSigma = 0;
  for (int i = 0; i < draws; ++i) {
    double x = normalAt(key, i);
    ASSERT_TRUE(std::isfinite(x)) << "at " << i;
    sum += x;
    sumSquares += x * x;
    withinOneSigma += std::abs(x) < 1.0;
  }
  double mean = sum / draws;
  double variance = sumSquares / draws - mean * mean;
  // Standard errors: mean 1/sqrt(1e5) = 0.0032, variance sqrt(2/1e5) = 0.0045.
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(variance, 1.0, 0.03);
  // P(|x| < 1) = erf(1/sqrt 2) = 0.6827.
  EXPECT_NEAR(static_cast<double>(withinOneSigma) / draws, 0.6827, 0.01);
}

TEST(RandomTest, NormalIsBoxMullerOverConsecutiveUniforms) {
  // normalAt(i) = sqrt(-2 log(1 - u1)) cos(2 pi u2), u1 = uniformAt(2i),
  // u2 = uniformAt(2i + 1) (Random.h).
  uint64_t key = streamKey(9, "box-muller");
  for (uint64_t i : {0ULL, 1ULL, 77ULL}) {
    double u1 = uniformAt(key, 2 * i), u2 = uniformAt(key, 2 * i + 1);
    double expected =
        std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(2.0 * M_PI * u2);
    EXPECT_NEAR(normalAt(key, i), expected, 1e-12 * (1 + std::abs(expected)));
  }
}

//===----------------------------------------------------------------------===//
// Stream
//===----------------------------------------------------------------------===//

TEST(StreamTest, WalksItsStreamInOrder) {
  Stream stream(4, "sampler");
  uint64_t key = streamKey(4, "sampler");
  for (uint64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(stream.getPosition(), i);
    EXPECT_EQ(stream.uniform(), uniformAt(key, i));
  }
  stream.setPosition(3);
  EXPECT_EQ(stream.uniform(), uniformAt(key, 3));
  EXPECT_EQ(stream.getPosition(), 4u);
}

TEST(StreamTest, SameSeedAndNameGiveSameSequence) {
  Stream a(8, "s"), b(8, "s"), c(8, "t");
  int differences = 0;
  for (int i = 0; i < 32; ++i) {
    uint64_t x = a.below(1000000);
    EXPECT_EQ(x, b.below(1000000));
    differences += x != c.below(1000000);
  }
  EXPECT_GT(differences, 28);
}

TEST(StreamTest, BelowStaysBelowItsBound) {
  Stream stream(1, "below");
  for (uint64_t bound : {1ULL, 2ULL, 3ULL, 7ULL, 1000ULL, (1ULL << 40) + 3,
                         (1ULL << 63) + 1, ~0ULL}) {
    for (int i = 0; i < 2000; ++i) {
      uint64_t value = stream.below(bound);
      ASSERT_LT(value, bound) << "bound " << bound;
    }
  }
  EXPECT_EQ(stream.getPosition(), 8u * 2000u);
}

TEST(StreamTest, BelowReachesEveryValueRoughlyEvenly) {
  Stream stream(2, "histogram");
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 50000; ++i)
    ++counts[stream.below(5)];
  for (int count : counts)
    EXPECT_NEAR(count, 10000, 500); // std error ~ 89
}

//===----------------------------------------------------------------------===//
// BatchSampler
//===----------------------------------------------------------------------===//

namespace {

class BatchSamplerTest : public ::testing::Test {
protected:
  void TearDown() override {
    for (const std::string &path : files)
      unlink(path.c_str());
  }

  /// A file of `size` bytes whose byte i is i % 251 (distinct within 251).
  std::string writeCorpus(const std::string &name, size_t size) {
    std::string path = ::testing::TempDir();
    if (path.empty() || path.back() != '/')
      path += '/';
    path += "moe-text-" + std::to_string(getpid()) + "-" + name;
    std::ofstream file(path, std::ios::binary);
    for (size_t i = 0; i < size; ++i)
      file.put(static_cast<char>(i % 251));
    files.push_back(path);
    return path;
  }

  /// An llm.c token file: 256 int32 header (magic, version, count), then
  /// `count` uint16 tokens; `claimed` overrides the header's count.
  std::string writeTokenFile(const std::string &name,
                             const std::vector<uint16_t> &tokens,
                             int32_t claimed = -1, int32_t version = 1) {
    std::string path = writeCorpus(name, 0);
    std::ofstream file(path, std::ios::binary);
    int32_t header[256] = {20240520, version,
                           claimed >= 0 ? claimed
                                        : static_cast<int32_t>(tokens.size())};
    file.write(reinterpret_cast<const char *>(header), sizeof(header));
    file.write(reinterpret_cast<const char *>(tokens.data()),
               tokens.size() * sizeof(uint16_t));
    return path;
  }

  std::vector<std::string> files;
};

} // namespace

TEST_F(BatchSamplerTest, ReadsLlmcTokenFiles) {
  std::vector<uint16_t> tokens = {0, 1, 50000, 65535, 7};
  DataTokens read = readTokens(writeTokenFile("tokens.bin", tokens));
  EXPECT_EQ(read.ids, (std::vector<int32_t>{0, 1, 50000, 65535, 7}));
  EXPECT_FALSE(read.text);
}

TEST_F(BatchSamplerTest, RefusesInconsistentTokenFiles) {
  std::string truncated = writeTokenFile("short.bin", {1, 2, 3}, 10);
  std::string message = errorOf([&] { readTokens(truncated); });
  EXPECT_TRUE(contains(message, "header says 10 tokens")) << message;
  std::string version = writeTokenFile("v2.bin", {1, 2}, -1, 2);
  message = errorOf([&] { readTokens(version); });
  EXPECT_TRUE(contains(message, "version 2 is not supported")) << message;
}

namespace {

/// The bytes of a file that starts with the three int32 `words`, padded
/// with zero bytes to `size`.
std::vector<char> fileOf(std::vector<int32_t> words, size_t size) {
  std::vector<char> bytes(size, 0);
  std::memcpy(bytes.data(), words.data(),
              std::min(size, words.size() * sizeof(int32_t)));
  return bytes;
}

/// Expects `bytes` refused as file `name` with a message that holds
/// `expected`.
void expectRefused(const std::vector<char> &bytes, const std::string &name,
                   const std::string &expected) {
  std::string message = errorOf([&] { parseTokens(bytes, name); });
  EXPECT_TRUE(contains(message, expected)) << message;
}

/// Expects `bytes` read as text: a token per byte.
void expectText(const std::vector<char> &bytes, const std::string &name) {
  DataTokens tokens = parseTokens(bytes, name);
  EXPECT_EQ(tokens.ids.size(), bytes.size()) << name;
  EXPECT_TRUE(tokens.text) << name;
}

} // namespace

TEST(ParseTokens, RecognizesTheHeaderFromItsTwelveBytesOn) {
  // Magic, version 1, 0 tokens in 12 bytes: a truncated token file (its
  // header is 1024 bytes), not 12 bytes of text.
  expectRefused(fileOf({20240520, 1, 0}, 12), "cut.bin",
                "cut.bin: token file header says 0 tokens (1024 bytes) but "
                "the file has 12 bytes");
  // 11 bytes hold no header: text.
  expectText(fileOf({20240520, 1, 0}, 11), "short.txt");
}

TEST(ParseTokens, RefusesANegativeTokenCount) {
  // -1 tokens would be 1024 - 2 = 1022 bytes, which this file has.
  expectRefused(fileOf({20240520, 1, -1}, 1022), "neg.bin",
                "neg.bin: token file header says -1 tokens");
}

TEST(ParseTokens, ADamagedMagicIsRefusedOnlyInATokenFilesLayout) {
  // Version 1 and a size that fits the count, 0 tokens included: a token
  // file whose magic is damaged.
  expectRefused(fileOf({20240521, 1, 0}, 1024), "empty.bin",
                "empty.bin: laid out as an llm.c token file of 0 tokens, but "
                "its magic is 20240521");
  // Another version, or a size that does not fit the count, is text.
  expectText(fileOf({7, 2, 4}, 1032), "v2.txt");
  expectText(fileOf({7, 1, 4}, 1031), "odd.txt");
}

namespace {

/// Llama 3's llm.c token file of `tokens` (magic 20240801, version 7,
/// uint32 tokens) as bytes, with header words `magic` and `version`.
std::vector<char> llama3TokenFile(const std::vector<uint32_t> &tokens,
                                  int32_t magic = 20240801,
                                  int32_t version = 7) {
  std::vector<char> bytes =
      fileOf({magic, version, static_cast<int32_t>(tokens.size())},
             1024 + 4 * tokens.size());
  std::memcpy(bytes.data() + 1024, tokens.data(), 4 * tokens.size());
  return bytes;
}

} // namespace

TEST(ParseTokens, ReadsLlama3TokenFiles) {
  DataTokens read =
      parseTokens(llama3TokenFile({0, 65535, 65536, 151935}), "llama3.bin");
  EXPECT_EQ(read.ids, (std::vector<int32_t>{0, 65535, 65536, 151935}));
  EXPECT_FALSE(read.text);
  // GPT-2's version with Llama 3's magic, a damaged magic in Llama 3's
  // layout, and an id past int32 are refused.
  expectRefused(llama3TokenFile({1, 2}, 20240801, 1), "v1.bin",
                "v1.bin: token file version 1 is not supported (7 is, for "
                "magic 20240801)");
  expectRefused(llama3TokenFile({1, 2}, 20240802), "magic.bin",
                "magic.bin: laid out as an llm.c token file of 2 tokens, but "
                "its magic is 20240802, not 20240801");
  expectRefused(llama3TokenFile({1, 0x80000000u}), "big.bin",
                "big.bin: token 1 is 2147483648, beyond any vocabulary");
}

TEST_F(BatchSamplerTest, OtherFilesAreBytes) {
  std::string path = writeCorpus("bytes.txt", 300);
  DataTokens read = readTokens(path);
  ASSERT_EQ(read.ids.size(), 300u);
  EXPECT_EQ(read.ids[250], 250);
  EXPECT_EQ(read.ids[251], 0);
  EXPECT_TRUE(read.text);
}

TEST_F(BatchSamplerTest, WindowsAreContiguousAndTargetsShiftByOne) {
  std::string path = writeCorpus("contiguous", 200);
  BatchSampler batches(path, /*seqLen=*/8, /*seed=*/42);
  EXPECT_EQ(batches.size(), 200u);
  for (int step = 0; step < 20; ++step) {
    TokenBatch batch = batches.next(4);
    EXPECT_EQ(batch.batch, 4);
    EXPECT_EQ(batch.seqLen, 8);
    ASSERT_EQ(batch.inputs.size(), 32u);
    ASSERT_EQ(batch.targets.size(), 32u);
    for (int b = 0; b < 4; ++b) {
      // Byte values equal their offsets (the file is shorter than 251), so a
      // window starting at s reads s, s + 1, ..., s + 8.
      int32_t start = batch.inputs[b * 8];
      EXPECT_GE(start, 0);
      EXPECT_LE(start, 200 - 9);
      for (int s = 0; s < 8; ++s) {
        EXPECT_EQ(batch.inputs[b * 8 + s], start + s);
        EXPECT_EQ(batch.targets[b * 8 + s], start + s + 1);
      }
    }
  }
}

// Ids run from 0 to vocab - 1: the last id is accepted, and the vocabulary's
// size itself (one row past the embedding table) is refused, as is -1.
TEST(CheckVocabulary, AcceptsTheLastIdAndRefusesTheVocabularySize) {
  EXPECT_NO_THROW(checkVocabulary({0, 5, 9}, 10, "ok.bin"));
  std::string message = errorOf([] {
    checkVocabulary({0, 10, 3}, 10, "past.bin");
  });
  EXPECT_TRUE(contains(message, "past.bin: token 1 is 10, outside the "
                                "model's vocabulary of 10"))
      << message;
  message = errorOf([] { checkVocabulary({-1}, 10, "negative.bin"); });
  EXPECT_TRUE(contains(message, "token 0 is -1")) << message;
}

TEST(TokensFingerprint, CountsAndDigestsEveryToken) {
  std::vector<int32_t> tokens(1001);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<int32_t>(i % 97);
  std::string fingerprint = tokensFingerprint(tokens);
  EXPECT_EQ(fingerprint.rfind("1001 tokens #", 0), 0u) << fingerprint;
  EXPECT_EQ(fingerprint, tokensFingerprint(tokens));
  // A change anywhere (each of the four lanes, and the tail), a swap of
  // neighbours (two lanes) or one token less is another fingerprint.
  for (size_t changed : {0, 1, 2, 3, 500, 1000}) {
    std::vector<int32_t> other = tokens;
    other[changed] += 1;
    EXPECT_NE(tokensFingerprint(other), fingerprint) << changed;
  }
  std::vector<int32_t> swapped = tokens;
  std::swap(swapped[10], swapped[11]);
  EXPECT_NE(tokensFingerprint(swapped), fingerprint);
  std::vector<int32_t> shorter(tokens.begin(), tokens.end() - 1);
  EXPECT_NE(tokensFingerprint(shorter), fingerprint);
}

// Checkpoints save the fingerprint: another digest of the same tokens
// would say that a resumed run's data changed. The digests below follow
// the format's definition (eight lanes from 1 to 8, token i mixed into lane
// i % 8 with SplitMix64's mix64, then the count's mix64 mixed with each
// lane in turn), computed apart from this code.
TEST(TokensFingerprint, IsTheDigestCheckpointsSaved) {
  std::vector<int32_t> tokens = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(tokensFingerprint(tokens), "10 tokens #e496c45697b4b998");
  EXPECT_EQ(tokensFingerprint({}), "0 tokens #002c770a2475d6be");
}

TEST_F(BatchSamplerTest, TokensAreUnsignedBytes) {
  // Bytes 250 and 0 follow each other at offset 250: a signed char would
  // give a negative token.
  std::string path = writeCorpus("bytes", 252);
  BatchSampler batches(path, /*seqLen=*/251, /*seed=*/0);
  TokenBatch batch = batches.next(1);
  ASSERT_EQ(batch.inputs.size(), 251u);
  EXPECT_EQ(batch.inputs.back(), 250);
  for (int32_t token : batch.inputs) {
    EXPECT_GE(token, 0);
    EXPECT_LT(token, 256);
  }
}

TEST_F(BatchSamplerTest, SameSeedGivesSameBatches) {
  std::string path = writeCorpus("seeded", 500);
  BatchSampler a(path, 16, 7), b(path, 16, 7), c(path, 16, 8);
  bool anyDifferent = false;
  for (int step = 0; step < 5; ++step) {
    TokenBatch first = a.next(3), second = b.next(3), other = c.next(3);
    EXPECT_EQ(first.inputs, second.inputs);
    EXPECT_EQ(first.targets, second.targets);
    anyDifferent |= first.inputs != other.inputs;
  }
  EXPECT_TRUE(anyDifferent);
}

TEST_F(BatchSamplerTest, EveryWindowStartIsReachable) {
  // 10 bytes, seqLen 8: the windows start at 0 or 1 (9 bytes each).
  std::string path = writeCorpus("two-windows", 10);
  BatchSampler batches(path, 8, 3);
  std::set<int32_t> starts;
  for (int step = 0; step < 50; ++step)
    starts.insert(batches.next(1).inputs[0]);
  EXPECT_EQ(starts, (std::set<int32_t>{0, 1}));
}

TEST_F(BatchSamplerTest, ExactlyOneWindowIsAccepted) {
  std::string path = writeCorpus("one-window", 9);
  BatchSampler batches(path, 8, 1);
  TokenBatch batch = batches.next(2);
  EXPECT_EQ(batch.inputs, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2,
                                                3, 4, 5, 6, 7}));
}

TEST_F(BatchSamplerTest, TooShortFileThrows) {
  std::string path = writeCorpus("short", 8);
  std::string message = errorOf([&] { BatchSampler batches(path, 8, 1); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "8 tokens")) << message;
}

TEST_F(BatchSamplerTest, MissingFileThrows) {
  std::string path = ::testing::TempDir() + "/moe-text-does-not-exist";
  std::string message = errorOf([&] { BatchSampler batches(path, 8, 1); });
  EXPECT_TRUE(contains(message, "cannot open")) << message;
}

TEST_F(BatchSamplerTest, NonPositiveSequenceLengthThrows) {
  std::string path = writeCorpus("zero-len", 16);
  std::string message = errorOf([&] { BatchSampler batches(path, 0, 1); });
  EXPECT_TRUE(contains(message, "sequence length")) << message;
}

TEST(RandomTest, FillNormalEqualsTheScalarPathBitForBit) {
  // The vectorized initializer of f32 globals (fillNormal) against
  // float(scale * normalAt): unaligned starts, partial vectors, several
  // streams and scales, 4M values.
  for (auto [seed, scale] : {std::pair<uint64_t, double>{1, 0.02},
                             {2, 1.0},
                             {3, 0.0883883476483184},
                             {4, 3e-5}}) {
    uint64_t key = streamKey(seed, "fill.layer" + std::to_string(seed));
    uint64_t first = seed * 1000003;
    const int64_t count = (int64_t(1) << 20) + 13;
    std::vector<float> fast(count);
    fillNormal(key, first, count, scale, fast.data());
    int64_t differences = 0;
    for (int64_t i = 0; i < count; ++i) {
      float expected = static_cast<float>(scale * normalAt(key, first + i));
      differences += std::memcmp(&fast[i], &expected, sizeof(float)) != 0;
    }
    EXPECT_EQ(differences, 0) << "seed " << seed;
  }
}

TEST(RandomTest, FillNormalScalarPathFillsEveryValueItTakes) {
  // fillNormal's scalar fallback is too rare for the test above to reach:
  // with an error bound of 1%, no lane is certain of its float, so every
  // value is the fallback's, and must be the scalar value at its index.
  uint64_t key = streamKey(5, "fill.fallback");
  const int64_t count = 100003;
  std::vector<float> filled(count);
  EXPECT_EQ(moert::detail::fillNormalAssuming(1e-2, key, 77, count, 0.5,
                                              filled.data()),
            count);
  for (int64_t i = 0; i < count; ++i) {
    float expected = static_cast<float>(0.5 * normalAt(key, 77 + i));
    ASSERT_EQ(std::memcmp(&filled[i], &expected, sizeof(float)), 0)
        << "index " << i;
  }
}

TEST(RandomTest, FillNormalLanesAloneAreWithinTheirErrorBound) {
  // With no error assumed, every value is the lanes' own rounding: it may
  // differ from the scalar path's only where the scalar value lies within
  // fillNormal's bound (1e-14 relative) of a midpoint between two floats,
  // about once in three million values, and then by one float.
  uint64_t key = streamKey(6, "fill.lanes");
  const int64_t count = int64_t(1) << 20;
  std::vector<float> filled(count);
  EXPECT_EQ(
      moert::detail::fillNormalAssuming(0.0, key, 3, count, 1.0, filled.data()),
      0);
  int64_t differences = 0;
  for (int64_t i = 0; i < count; ++i) {
    float expected = static_cast<float>(normalAt(key, 3 + i));
    if (filled[i] == expected)
      continue;
    ++differences;
    EXPECT_TRUE(std::nextafter(expected, filled[i]) == filled[i])
        << "index " << i << ": " << filled[i] << " against " << expected;
  }
  EXPECT_LE(differences, 8);
}
