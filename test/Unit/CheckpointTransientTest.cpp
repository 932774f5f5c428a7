//===- CheckpointTransientTest.cpp - transient globals and checkpoints ----===//
//
// A gradient accumulator (moe_global.transient) is zero between steps: a
// checkpoint leaves it out, and resuming zeroes it whatever the state held.
// So are a config's constants (moe_global.config_constant, a fixed aux-loss
// coefficient) left out: a resumed run takes its model's initializer.
//
//===----------------------------------------------------------------------===//

#include "TemporaryDirectory.h"
#include "moert/Checkpoint.h"
#include "moert/Safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

namespace {

/// A one-rank model named `name` of `count` globals in `stateBytes` of
/// state.
moe_model modelOf(const char *name, moe_global *globals, int64_t count,
                  int64_t stateBytes) {
  moe_model model{};
  model.abi_version = MOE_ABI_VERSION;
  model.name = name;
  model.config_json = "";
  model.training = "";
  model.alignment = 64;
  model.ranks = 1;
  model.micro_batches = 1;
  model.state_bytes = stateBytes;
  model.num_globals = count;
  model.globals = globals;
  return model;
}

TEST(CheckpointTransientTest, LeftOutOfCheckpointsAndZeroedOnResume) {
  static const int64_t shape[] = {4};
  moe_global globals[2] = {};
  globals[0].tensor = {"w", MOE_F32, 1, shape};
  globals[0].bytes = 16;
  globals[0].trainable = 1;
  globals[1].tensor = {"w.grad_accum", MOE_F32, 1, shape};
  globals[1].offset = 64;
  globals[1].bytes = 16;
  globals[1].transient = 1;
  moe_model model = modelOf("transient", globals, 2, 128);
  model.micro_batches = 2;

  std::vector<float> state(32, 0.0f);
  for (int i = 0; i < 4; ++i) {
    state[i] = 1.0f + static_cast<float>(i);
    state[16 + i] = 7.0f;
  }
  moe::test::TemporaryDirectory directory("transient");
  std::string path = directory.pathOf("run.safetensors");
  moert::saveCheckpoint(path, model, state.data(), {3, 0, 0}, {});
  moert::SafetensorsReader file(path);
  ASSERT_EQ(file.getTensors().size(), 1u);
  EXPECT_NE(file.find("w"), nullptr);

  std::vector<float> resumed(32, -5.0f);
  moert::CheckpointRun run =
      moert::loadCheckpoint(path, model, resumed.data(), {});
  EXPECT_EQ(run.position.step, 3);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(resumed[i], 1.0f + static_cast<float>(i));
    EXPECT_EQ(resumed[16 + i], 0.0f);
  }
}

/// A model of a weight and two aux-loss coefficients, `constant` marking
/// which of the coefficients are constants of the config.
struct CoefficientModel {
  static constexpr int64_t kShape[] = {4};
  moe_global globals[3] = {};
  moe_model model{};

  CoefficientModel(bool firstConstant, bool secondConstant) {
    globals[0].tensor = {"w", MOE_F32, 1, kShape};
    globals[0].bytes = 16;
    globals[0].trainable = 1;
    const char *names[] = {"a.aux_loss_coeff", "b.aux_loss_coeff"};
    bool constant[] = {firstConstant, secondConstant};
    for (int i = 0; i < 2; ++i) {
      moe_global &coeff = globals[1 + i];
      coeff.tensor = {names[i], MOE_F32, 0, nullptr};
      coeff.offset = 64 * (1 + i);
      coeff.bytes = 4;
      coeff.init_kind = MOE_INIT_CONSTANT;
      coeff.init_value = 0.25 * (1 + i);
      coeff.config_constant = constant[i];
    }
    model = modelOf("coefficients", globals, 3, 192);
  }
};

TEST(CheckpointTransientTest, ConfigConstantsLeftOutAndTakenFromTheModel) {
  // a's coefficient is the config's, b's adaptive.
  CoefficientModel fixedA(true, false);
  EXPECT_TRUE(moert::adaptiveAuxCoefficients(fixedA.model));
  EXPECT_FALSE(
      moert::adaptiveAuxCoefficients(CoefficientModel(true, true).model));
  std::vector<float> state(48, 0.0f);
  for (int i = 0; i < 4; ++i)
    state[i] = 1.0f + static_cast<float>(i);
  state[16] = 3.0f;
  state[32] = 5.0f;
  moe::test::TemporaryDirectory directory("constants");
  std::string path = directory.pathOf("run.safetensors");
  moert::saveCheckpoint(path, fixedA.model, state.data(), {3, 0, 0}, {});
  {
    moert::SafetensorsReader file(path);
    EXPECT_EQ(file.getTensors().size(), 2u);
    EXPECT_EQ(file.find("a.aux_loss_coeff"), nullptr);
    EXPECT_NE(file.find("b.aux_loss_coeff"), nullptr);
  }
  moert::CheckpointRun saved =
      moert::parseCheckpointRun(path, moert::readSafetensorsMetadata(path));
  ASSERT_TRUE(saved.configConstants);
  EXPECT_EQ(*saved.configConstants, std::set<std::string>{"a.aux_loss_coeff"});

  // The same model: the constant is its initializer's, the rest the file's.
  std::vector<float> resumed(48, -5.0f);
  moert::CheckpointRun run =
      moert::loadCheckpoint(path, fixedA.model, resumed.data(), {});
  EXPECT_EQ(resumed[0], 1.0f);
  EXPECT_EQ(resumed[16], 0.25f);
  EXPECT_EQ(resumed[32], 5.0f);
  EXPECT_EQ(run.stateChanges, "");

  // Swapped: a's starts from its initializer (the checkpoint held it
  // constant), b's is the config's constant, not the trained 5.
  CoefficientModel fixedB(false, true);
  std::fill(resumed.begin(), resumed.end(), -5.0f);
  run = moert::loadCheckpoint(path, fixedB.model, resumed.data(), {});
  EXPECT_EQ(resumed[3], 4.0f);
  EXPECT_EQ(resumed[16], 0.25f);
  EXPECT_EQ(resumed[32], 0.5f);
  EXPECT_EQ(run.stateChanges,
            "b.aux_loss_coeff: trained -> the config's constant; "
            "a.aux_loss_coeff: the config's constant -> trained from its "
            "initializer");
}

} // namespace
