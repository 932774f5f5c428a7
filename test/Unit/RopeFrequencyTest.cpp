//===- RopeFrequencyTest.cpp - RoPE's scaled frequencies ------------------===//
//
// moert::rows::ropeFrequency, which the interpreter and both targets call,
// against the inverse frequencies transformers 5.25 computes
// (modeling_rope_utils' ROPE_INIT_FUNCTIONS, in f32) for real models'
// settings, at the pairs that fall on each branch of a kind's formula: the
// kept high frequencies, the blended middle, the slowed low ones.
//
//===----------------------------------------------------------------------===//

#include "moert/RowMath.h"

#include <gtest/gtest.h>

namespace {

struct Expected {
  int64_t pair;
  double frequency;
};

void expectFrequencies(int64_t headDim, double theta,
                       const moert::RopeScaling &scaling,
                       std::initializer_list<Expected> expected) {
  for (const Expected &e : expected)
    EXPECT_NEAR(moert::rows::ropeFrequency(e.pair, headDim, theta, scaling),
                e.frequency, 1e-6 * e.frequency)
        << "pair " << e.pair;
}

TEST(RopeFrequencyTest, Llama31) {
  // Llama 3.1's rope_scaling: factor 8, low 1, high 4, original 8192; the
  // pairs 29-34 are blended.
  expectFrequencies(128, 500000.0, {moert::RopeKind::Llama3, 8, 1, 4, 8192},
                    {{0, 1.0},
                     {29, 0.0021665706299245358},
                     {30, 0.0013718936825171113},
                     {32, 0.0005248460220173001},
                     {34, 0.0001785077911335975},
                     {63, 3.068925877869333e-07}});
}

TEST(RopeFrequencyTest, Qwen3Yarn) {
  // Qwen3's YaRN recipe: factor 4 over an original 32768, betas 32 and 1;
  // the ramp runs over pairs 24-39.
  expectFrequencies(128, 1e6,
                    {moert::RopeKind::Yarn, 4, 1, 4, 32768, 32, 1, true, 1},
                    {{0, 1.0},
                     {24, 0.005375321488827467},
                     {25, 0.004131738096475601},
                     {32, 0.0006029411451891065},
                     {39, 6.490394298452884e-05},
                     {63, 3.102344408034696e-07}});
}

TEST(RopeFrequencyTest, YarnUntruncatedWithOtherBetas) {
  // The ramp's ends not rounded out (truncate false), betas 16 and 2.
  expectFrequencies(64, 1e4,
                    {moert::RopeKind::Yarn, 2.5, 1, 4, 2048, 16, 2, false, 1},
                    {{0, 1.0},
                     {11, 0.04032137244939804},
                     {12, 0.027610553428530693},
                     {16, 0.005409295670688152},
                     {17, 0.003433625213801861},
                     {31, 5.334085653885268e-05}});
}

TEST(RopeFrequencyTest, LinearAndDefault) {
  EXPECT_DOUBLE_EQ(moert::rows::ropeFrequency(3, 16, 1e4, {}),
                   std::pow(1e4, -6.0 / 16));
  EXPECT_DOUBLE_EQ(
      moert::rows::ropeFrequency(3, 16, 1e4, {moert::RopeKind::Linear, 4}),
      std::pow(1e4, -6.0 / 16) / 4);
}

} // namespace
