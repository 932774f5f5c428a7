//===- CheckpointConfigTest.cpp - a checkpoint's config and the model's ---===//
//
// Resuming a checkpoint of another configuration is refused, naming the
// first key that differs and its value in each config, "none" where one
// config lacks it; the canonical configs decide where both sides have one.
//
//===----------------------------------------------------------------------===//

#include "ErrorTestUtils.h"
#include "moert/Checkpoint.h"

#include <gtest/gtest.h>

using namespace moe::test;

namespace {

std::string configError(const std::string &saved, const std::string &mine,
                        const std::string &savedCanonical = "",
                        const std::string &myCanonical = "") {
  moert::CheckpointRun run;
  run.model = "tiny";
  run.config = saved;
  run.canonicalConfig = savedCanonical;
  return errorOf([&] {
    moert::requireCheckpointConfig("run.safetensors", run, {mine, myCanonical},
                                   "its binary", "");
  });
}

TEST(CheckpointConfigTest, NamesTheKeyThatDiffers) {
  EXPECT_EQ(configError(R"({"hidden_size": 128, "vocab_size": 256})",
                        R"({"vocab_size": 256, "hidden_size": 64})"),
            "run.safetensors: checkpoint of another configuration of model "
            "'tiny' (its 'hidden_size' differs: 128 in the checkpoint's "
            "config, 64 in this one's): resume it with its binary");
}

TEST(CheckpointConfigTest, NamesAKeyThatOnlyOneConfigHas) {
  // Only the checkpoint's, then only the model's.
  EXPECT_TRUE(
      contains(configError(R"({"a": 1, "router_jitter": 0.1})", R"({"a": 1})"),
               "(its 'router_jitter' differs: 0.1 in the "
               "checkpoint's config, none in this one's)"));
  std::string added =
      configError(R"({"a": 1})", R"({"a": 1, "router_jitter": 0.1})");
  EXPECT_TRUE(contains(added, "(its 'router_jitter' differs: none in the "
                              "checkpoint's config, 0.1 in this one's)"))
      << added;
}

TEST(CheckpointConfigTest, CanonicalConfigsDecideWhereBothHaveOne) {
  // Files spelled otherwise, the same canonical config.
  EXPECT_EQ(configError(R"({"rope_theta": 10000})",
                        R"({"rope_parameters": {"rope_theta": 10000}})",
                        R"({"rope_theta": 10000.0})",
                        R"({"rope_theta": 10000.0})"),
            "");
  // The same files, other canonical configs: the canonical key is named.
  EXPECT_TRUE(contains(configError(R"({"a": 1})", R"({"a": 2})",
                                   R"({"rope_theta": 10000.0})",
                                   R"({"rope_theta": 1000000.0})"),
                       "(its 'rope_theta' differs: 10000.0 in the "
                       "checkpoint's config, 1000000.0 in this one's)"));
  // One side without a canonical config: the files compare.
  EXPECT_TRUE(contains(configError(R"({"a": 1})", R"({"a": 2})",
                                   R"({"rope_theta": 10000.0})", ""),
                       "(its 'a' differs: 1 in the checkpoint's config, 2 "
                       "in this one's)"));
}

TEST(CheckpointConfigTest, ResumableChangesAreListed) {
  moert::CheckpointRun run;
  run.config = R"({"moe_capacity_factor": 1.0, "moe_seq_len": 8})";
  run.canonicalConfig = R"({"moe_capacity_factor": 1.0, "moe_seq_len": 8})";
  // Canonically, an unset capacity is dropless.
  EXPECT_EQ(moert::resumableChanges(
                "run.safetensors", run,
                {R"({"moe_seq_len": 8})",
                 R"({"moe_capacity_factor": null, "moe_seq_len": 16})"},
                /*adaptiveAux=*/false),
            "moe_seq_len: 8 -> 16; moe_capacity_factor: 1.0 -> dropless");
  // As files spell them, an absent key is "(none)".
  EXPECT_EQ(moert::resumableChanges("run.safetensors", run,
                                    {R"({"moe_seq_len": 8})", ""},
                                    /*adaptiveAux=*/false),
            "moe_capacity_factor: 1.0 -> (none)");
}

TEST(CheckpointConfigTest, AuxLossCoefficientsMayChange) {
  moert::CheckpointRun run;
  run.config = run.canonicalConfig =
      R"({"moe_aux_loss_coeff": 0.01, "moe_z_loss_coeff": 0.001})";
  std::string mine =
      R"({"moe_aux_loss_coeff": 0.02, "moe_z_loss_coeff": 0.002})";
  EXPECT_EQ(moert::resumableChanges("run.safetensors", run, {mine, mine},
                                    /*adaptiveAux=*/false),
            "moe_aux_loss_coeff: 0.01 -> 0.02; moe_z_loss_coeff: 0.001 -> "
            "0.002");
  // Adaptive coefficients are state: the config's only started them.
  EXPECT_EQ(moert::resumableChanges("run.safetensors", run, {mine, mine},
                                    /*adaptiveAux=*/true),
            "moe_aux_loss_coeff: 0.01 -> 0.02 (the adaptive coefficients' "
            "start: the checkpoint's coefficients go on); moe_z_loss_coeff: "
            "0.001 -> 0.002");
  EXPECT_EQ(configError(run.config, mine, run.config, mine), "");
  // Where the checkpoint's were fixed, they start anew (loadCheckpoint).
  run.configConstants = {{"model.layers.0.block_sparse_moe.aux_loss_coeff"}};
  EXPECT_EQ(moert::resumableChanges("run.safetensors", run, {mine, mine},
                                    /*adaptiveAux=*/true),
            "moe_aux_loss_coeff: 0.01 -> 0.02; moe_z_loss_coeff: 0.001 -> "
            "0.002");
}

TEST(CheckpointConfigTest, AZLossMayComeAndGo) {
  // A zero coefficient has no z-loss term, so no globals; the others are
  // constants of the config, which checkpoints leave out.
  moert::CheckpointRun run;
  std::string none = R"({"moe_z_loss_coeff": 0.0})",
              some = R"({"moe_z_loss_coeff": 0.001})";
  run.config = run.canonicalConfig = some;
  EXPECT_EQ(configError(some, none, some, none), "");
  EXPECT_EQ(configError(none, some, none, some), "");
  EXPECT_EQ(moert::resumableChanges("run.safetensors", run, {none, none},
                                    /*adaptiveAux=*/false),
            "moe_z_loss_coeff: 0.001 -> 0.0");
}

TEST(CheckpointConfigTest, ConfigConstantsAreAListOfNames) {
  auto parse = [](const std::string &constants) {
    std::string fields = R"({"model": "tiny", "config": "", "step": 3, )"
                         R"("seed": 0, "train_position": 0)";
    if (!constants.empty())
      fields += R"(, "config_constants": )" + constants;
    return moert::parseCheckpointRun(
        "run.safetensors",
        {{"format", "moe-checkpoint-v1"}, {"moe", fields + "}"}});
  };
  // Unknown before ABI 11.
  EXPECT_FALSE(parse("").configConstants);
  EXPECT_EQ(parse(R"(["a.aux_loss_coeff"])").configConstants,
            std::set<std::string>{"a.aux_loss_coeff"});
  // A name alone is not a list of one.
  EXPECT_EQ(errorOf([&] { parse(R"("a.aux_loss_coeff")"); }),
            "run.safetensors: checkpoint metadata 'config_constants' must be "
            "a list of global names, not \"a.aux_loss_coeff\"");
}

TEST(CheckpointConfigTest, StateOriginChangesAreListed) {
  auto holds = [](std::set<std::string> names) {
    return [names](const std::string &name) { return names.count(name) > 0; };
  };
  moert::CheckpointRun run;
  // Unknown before ABI 11: nothing to say.
  EXPECT_EQ(moert::stateOriginChanges(run, {"a.aux_loss_coeff"}, {"w"},
                                      holds({"w", "a.aux_loss_coeff"})),
            "");
  // One of each: a constant that the checkpoint trained, a coefficient
  // that it held constant and that is trained now.
  run.configConstants.emplace(std::set<std::string>{"b.aux_loss_coeff"});
  EXPECT_EQ(moert::stateOriginChanges(run, {"a.aux_loss_coeff"},
                                      {"w", "b.aux_loss_coeff"},
                                      holds({"w", "a.aux_loss_coeff"})),
            "a.aux_loss_coeff: trained -> the config's constant; "
            "b.aux_loss_coeff: the config's constant -> trained from its "
            "initializer");
  // A constant that the checkpoint neither held nor listed (a z-loss
  // added) is new, not changed; one it listed too.
  EXPECT_EQ(moert::stateOriginChanges(run,
                                      {"a.z_loss_coeff", "b.aux_loss_coeff"},
                                      {"w"}, holds({"w"})),
            "");
}

TEST(CheckpointConfigTest, TheStepsShapeMayDiffer) {
  EXPECT_EQ(configError(R"({"a": 1, "moe_batch_size": 4, "moe_seq_len": 8})",
                        R"({"moe_seq_len": 16, "a": 1})"),
            "");
}

TEST(CheckpointConfigTest, TheWeightsReaderIsOfferedWhereTheWeightsFit) {
  // A key that shapes a weight: the weights do not fit, and reading them
  // alone is no way.
  auto error = [](const std::string &key) {
    moert::CheckpointRun run;
    run.model = "tiny";
    run.config = R"({"a": 1})";
    run.canonicalConfig = "{\"" + key + "\": 1}";
    return errorOf([&] {
      moert::requireCheckpointConfig("run.safetensors", run,
                                     {R"({"a": 2})", "{\"" + key + "\": 2}"},
                                     "its binary", "read its weights");
    });
  };
  for (const char *key :
       {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim",
        "num_local_experts", "moe_intermediate_size", "tie_word_embeddings",
        "moe_qk_norm", "qkv_bias"}) {
    std::string refused = error(key);
    EXPECT_TRUE(contains(refused, "(its '" + std::string(key) + "' differs"))
        << refused;
    EXPECT_FALSE(contains(refused, "read its weights")) << refused;
  }
  // One that does not (RoPE's base): they fit.
  std::string refused = error("rope_theta");
  EXPECT_TRUE(contains(refused, ": resume it with its binary, or read its "
                                "weights"))
      << refused;
}

} // namespace
