//===- CheckpointTransientTest.cpp - transient globals and checkpoints ----===//
//
// A gradient accumulator (moe_global.transient) is zero between steps: a
// checkpoint leaves it out, and resuming zeroes it whatever the state held.
//
//===----------------------------------------------------------------------===//

#include "TemporaryDirectory.h"
#include "moert/Checkpoint.h"
#include "moert/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

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
  moe_model model{};
  model.abi_version = MOE_ABI_VERSION;
  model.name = "transient";
  model.config_json = "";
  model.training = "";
  model.alignment = 64;
  model.ranks = 1;
  model.micro_batches = 2;
  model.state_bytes = 128;
  model.num_globals = 2;
  model.globals = globals;

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

} // namespace
