//===- UpcycleTest.cpp - moert/Upcycle.h's rules --------------------------===//

#include "moert/Upcycle.h"
#include "moert/Error.h"
#include "moert/Random.h"
#include "moert/Safetensors.h"

#include "TemporaryDirectory.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

using moert::DType;
using moert::UpcycleRule;

namespace {

/// A dense checkpoint with an FFN of 6 and hidden 2: gate [6, 2] and down
/// [2, 6] hold 0, 1, 2, ... in row-major order.
class UpcycleTest : public ::testing::Test {
protected:
  void SetUp() override {
    for (int i = 0; i < 12; ++i)
      values[i] = static_cast<float>(i);
    moert::writeSafetensors(path, {{"gate", DType::F32, {6, 2}, values},
                                   {"down", DType::F32, {2, 6}, values}});
  }

  std::vector<float> build(const std::string &ruleText,
                           std::vector<int64_t> shape) {
    moert::WeightSource dense(path);
    moert::OwnedTensor tensor =
        moert::upcycleTensor(moert::parseUpcycleRule(ruleText, "test"), dense,
                             "w", shape, DType::F32, 7, 0.5);
    EXPECT_EQ(tensor.shape, shape);
    const float *data = reinterpret_cast<const float *>(tensor.data.data());
    return {data, data + tensor.data.size() / sizeof(float)};
  }

  moe::test::TemporaryDirectory directory{"moe-upcycle"};
  std::string path = directory.pathOf("dense.safetensors");
  float values[12];
};

TEST_F(UpcycleTest, RulesRoundTripAsText) {
  for (const char *text :
       {"copy model.norm.weight",
        "copy model.layers.0.mlp.down_proj.weight scale=0.5",
        "experts model.layers.0.mlp.down_proj.weight copies=4 parts=3 axis=1 "
        "scale=3 noise=0.002",
        "router copies=4 parts=3", "zeros"}) {
    UpcycleRule rule = moert::parseUpcycleRule(text, "test");
    EXPECT_EQ(moert::formatUpcycleRule(rule), text);
  }
}

TEST_F(UpcycleTest, MalformedRulesAreErrorsNamingTheGlobal) {
  for (const char *text :
       {"clone x", "experts", "router copies=0", "experts x axis=2",
        "experts x copies=two", "router colour=red", "experts x noise=-1",
        "experts x scale=-2", "copy x copies=3", "router copies=2 noise=1",
        "copy x scale=0", "zeros scale=2", "router copies=2 scale=2",
        // A value is all of what follows '=': no trailing characters.
        "experts x copies=2x", "router parts=3,", "experts x scale=1.5.5",
        // Zeros read nothing.
        "zeros x", "zeros copies=2"}) {
    try {
      moert::parseUpcycleRule(text, "model.layers.0.x");
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const moert::Error &error) {
      EXPECT_NE(
          std::string(error.what()).find("model.layers.0.x: upcycle rule"),
          std::string::npos)
          << error.what();
    }
  }
}

TEST_F(UpcycleTest, GranularExpertsTakeTheirPartOfTheFfnAxis) {
  // 2 copies of 3 parts: expert c * 3 + g holds dense rows 2g and 2g + 1.
  std::vector<float> w1 =
      build("experts gate copies=2 parts=3 axis=0 scale=1 noise=0", {6, 2, 2});
  for (int64_t e = 0; e < 6; ++e)
    for (int64_t i = 0; i < 4; ++i)
      EXPECT_EQ(w1[e * 4 + i], values[(e % 3) * 4 + i]) << "expert " << e;
  // down [2, 6]: part g is columns 2g, 2g + 1, scaled by 3.
  std::vector<float> w2 =
      build("experts down copies=2 parts=3 axis=1 scale=3 noise=0", {6, 2, 2});
  for (int64_t e = 0; e < 6; ++e)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t c = 0; c < 2; ++c)
        EXPECT_EQ(w2[e * 4 + r * 2 + c], 3 * values[r * 6 + (e % 3) * 2 + c]);
}

TEST_F(UpcycleTest, NoiseMakesCopiesDifferByItsStd) {
  std::vector<float> w1 = build(
      "experts gate copies=200 parts=1 axis=0 scale=1 noise=0.01", {200, 6, 2});
  double sum = 0, squares = 0;
  for (int64_t e = 0; e < 200; ++e)
    for (int64_t i = 0; i < 12; ++i) {
      double noise = w1[e * 12 + i] - values[i];
      sum += noise;
      squares += noise * noise;
    }
  double mean = sum / 2400, spread = std::sqrt(squares / 2400 - mean * mean);
  EXPECT_NEAR(mean, 0, 1e-3);
  EXPECT_NEAR(spread, 0.01, 1e-3);
}

TEST_F(UpcycleTest, RouterRowsTieWithinACopyAndMatchTheInitializer) {
  std::vector<float> router = build("router copies=2 parts=3", {6, 2});
  uint64_t key = moert::streamKey(7, "w");
  for (int64_t e = 0; e < 6; ++e)
    for (int64_t h = 0; h < 2; ++h)
      EXPECT_EQ(
          router[e * 2 + h],
          static_cast<float>(0.5 * moert::normalAt(key, (e / 3) * 2 + h)));
  // One part per copy is the global's own initializer.
  std::vector<float> plain = build("router copies=6 parts=1", {6, 2});
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(plain[i], static_cast<float>(0.5 * moert::normalAt(key, i)));
}

TEST_F(UpcycleTest, ScaledCopiesAreScaled) {
  // An ungated shared expert's down_proj, halved.
  std::vector<float> down = build("copy gate scale=0.5", {6, 2});
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(down[i], 0.5f * values[i]);
}

TEST_F(UpcycleTest, ZerosAreZeros) {
  for (float value : build("zeros", {1, 6}))
    EXPECT_EQ(value, 0.0f);
}

TEST_F(UpcycleTest, ShapesThatDoNotFitAreErrors) {
  EXPECT_THROW(build("copy gate", {2, 6}), moert::Error);
  EXPECT_THROW(
      build("experts gate copies=2 parts=4 axis=0 scale=1 noise=0", {8, 1, 2}),
      moert::Error);
  EXPECT_THROW(
      build("experts gate copies=2 parts=1 axis=0 scale=1 noise=0", {3, 6, 2}),
      moert::Error);
  EXPECT_THROW(build("router copies=4 parts=1", {6, 2}), moert::Error);
}

} // namespace
