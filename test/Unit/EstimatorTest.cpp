//===- EstimatorTest.cpp - moe-estimate's formulas on a hand-made profile -===//
//
// A profile with round numbers (seconds, parameters and activations per
// slot) so that the expected step time, memory and split follow by hand
// from docs/Estimator.md's formulas.
//
//===----------------------------------------------------------------------===//

#include "moe/Analysis/OpCost.h"
#include "moe/Estimate/LayoutSearch.h"

#include <gtest/gtest.h>

using namespace mlir::moe;

namespace {

/// Slots: embedding (0.1 s forward, 0.2 s backward), `layers` layers (1 s,
/// 2 s; 1M dense and 4M expert parameters; 100 MB of f32 activations kept
/// for the backward), head (`headForward` s, twice that backward).
ModelProfile makeProfile(int64_t layers, double headForward) {
  ModelProfile profile;
  profile.shape = {layers,        /*hidden=*/1000, /*heads=*/8, /*kvHeads=*/8,
                   /*experts=*/4, /*seqLen=*/1000};
  profile.slots.resize(layers + 2);
  profile.slots.front().forwardSeconds = 0.1;
  profile.slots.front().backwardSeconds = 0.2;
  profile.slots.front().cost.denseParams = 1e6;
  for (int64_t layer = 1; layer <= layers; ++layer) {
    SlotProfile &slot = profile.slots[layer];
    slot.forwardSeconds = 1;
    slot.backwardSeconds = 2;
    slot.forwardFlops = 1e12;
    slot.backwardFlops = 2e12;
    slot.cost.denseParams = 1e6;
    slot.cost.expertParams = 4e6;
    slot.cost.savedActivationBytes = 1e8;
  }
  profile.slots.back().forwardSeconds = headForward;
  profile.slots.back().backwardSeconds = 2 * headForward;
  profile.slots.back().cost.denseParams = 1e6;
  return profile;
}

Cluster makeCluster(int64_t gpus) {
  Cluster cluster;
  cluster.name = "test";
  cluster.gpus = gpus;
  cluster.gpusPerNode = gpus;
  cluster.peakFlops = 1e15;
  cluster.hbmBytes = 1e12;
  cluster.hbmBandwidth = 1e12;
  cluster.intraNodeBandwidth = 1e11;
  cluster.interNodeBandwidth = 1e10;
  cluster.gemmEfficiency = cluster.attentionEfficiency = 1;
  cluster.memoryEfficiency = cluster.collectiveEfficiency = 1;
  cluster.gemmHalfDim = 1;
  return cluster;
}

TEST(EstimatorTest, PipelineTimeAndMemoryFollowTheFormulas) {
  Layout layout;
  layout.dp = 2;
  layout.pp = 4;
  layout.zero1 = true;
  // 8 sequences over 2 replicas: 4 micro-batches per pipeline.
  Estimate estimated = estimate(makeProfile(4, 0.5), makeCluster(8), layout, 8);
  ASSERT_TRUE(estimated.fits()) << estimated.rejection;
  EXPECT_EQ(estimated.microBatches, 4);
  EXPECT_EQ(estimated.layout.split, (std::vector<int64_t>{1, 1, 1, 1}));
  // Each stage also sends a micro-batch's activations (1000 tokens x 1000
  // x bf16) forward and their gradients back: 2 x 2 MB at 100 GB/s.
  double send = 2 * 2e6 / 1e11;
  // Stages: embedding + layer, layer, layer, layer + head.
  std::vector<double> stages = {3.3 + send, 3 + send, 3 + send, 4.5 + send};
  ASSERT_EQ(estimated.stageSeconds.size(), stages.size());
  for (size_t i = 0; i < stages.size(); ++i)
    EXPECT_NEAR(estimated.stageSeconds[i], stages[i], 1e-9);
  // 1F1B: every stage once, then 3 more micro-batches at the slowest.
  EXPECT_NEAR(estimated.pipelineSeconds, 13.8 + 4 * send + 3 * (4.5 + send),
              1e-9);
  // Stage 0 holds 4 micro-batches' activations (bf16: half the f32
  // bytes); bf16 weights, f32 gradients, and f32 master weights and Adam
  // moments sharded over the 2 replicas.
  EXPECT_EQ(estimated.fullestStage, 0);
  EXPECT_DOUBLE_EQ(estimated.paramBytes, 6e6 * 2);
  EXPECT_DOUBLE_EQ(estimated.gradBytes, 6e6 * 4);
  EXPECT_DOUBLE_EQ(estimated.optimizerBytes, 3e6 * 12);
  EXPECT_DOUBLE_EQ(estimated.activationBytes, 4 * 0.5e8);
  // Model flops: 4 layers x 3 TFLOP per sequence, 8 sequences, 8 GPUs.
  EXPECT_DOUBLE_EQ(estimated.flops, 12e12);
  EXPECT_NEAR(estimated.tokensPerGpuPerSecond,
              8 * 1000 / 8 / estimated.stepSeconds, 1e-9);
}

TEST(EstimatorTest, RecomputationTradesActivationsForAForwardPass) {
  Layout layout;
  layout.dp = 8;
  layout.recompute = true;
  Estimate estimated = estimate(makeProfile(4, 0.5), makeCluster(8), layout, 8);
  ASSERT_TRUE(estimated.fits()) << estimated.rejection;
  // Each layer runs its forward twice.
  EXPECT_NEAR(estimated.stageSeconds[0], 0.3 + 4 * 4 + 1.5, 1e-9);
  // Each layer keeps its input (1000 x 1000 bf16); one layer's
  // activations are rebuilt at a time, its kept input among them (counted
  // once); the head keeps nothing.
  EXPECT_DOUBLE_EQ(estimated.activationBytes, 3 * 2e6 + 0.5e8);
}

TEST(EstimatorTest, ImpossibleLayoutsSayWhy) {
  ModelProfile profile = makeProfile(4, 0.5);
  auto why = [&](const char *text, int64_t globalBatch = 8) {
    llvm::Expected<Layout> layout = parseLayout(text);
    EXPECT_TRUE(static_cast<bool>(layout)) << text;
    Estimate estimated =
        estimate(profile, makeCluster(8), *layout, globalBatch);
    EXPECT_FALSE(estimated.priced) << text;
    return estimated.rejection;
  };
  EXPECT_EQ(why("dp=2,pp=2"), "dp x tp x pp = 4 GPUs, but the cluster has 8");
  EXPECT_EQ(why("dp=8,ep=2"), "the program was compiled for ep=1, not 2");
  EXPECT_EQ(why("pp=8"), "pp=8 exceeds the 4 layers");
  EXPECT_EQ(why("dp=4,pp=2,split=1+2"),
            "split covers 3 layers in 2 stages; the model has 4 layers and "
            "pp=2");
  EXPECT_EQ(why("dp=8", 12), "the global batch of 12 sequences does not "
                             "split into dp=8 x mbs=1");
  Cluster small = makeCluster(8);
  small.hbmBytes = 1e8;
  Layout layout;
  layout.dp = 8;
  Estimate tooBig = estimate(profile, small, layout, 8);
  EXPECT_TRUE(tooBig.priced);
  EXPECT_EQ(tooBig.rejection, "stage 0 needs 0.6 GB of the 0.1 GB of HBM");
}

TEST(EstimatorTest, SearchMovesLayersOffAHeavyLastStage) {
  // A head as heavy as three layers: over 3 stages the even split 2+2+2
  // leaves the last stage at 15 s; one layer there brings it to 12 s.
  std::map<int64_t, ModelProfile> profiles = {{1, makeProfile(6, 3)}};
  SearchResult result = searchLayouts(profiles, makeCluster(3), 6);
  ASSERT_FALSE(result.ranked.empty());
  for (size_t i = 1; i < result.ranked.size(); ++i)
    EXPECT_GE(result.ranked[i - 1].tokensPerGpuPerSecond,
              result.ranked[i].tokensPerGpuPerSecond);
  auto pipelined = llvm::find_if(result.ranked, [](const Estimate &e) {
    return e.layout.pp == 3 && !e.layout.recompute;
  });
  ASSERT_NE(pipelined, result.ranked.end());
  // 3+2+1 and 1+4+1 both bring the slowest stage down to 12 s.
  EXPECT_EQ(pipelined->layout.split.back(), 1);
  EXPECT_NEAR(*llvm::max_element(pipelined->stageSeconds), 12, 1e-3);
  auto even = llvm::find_if(result.ranked, [](const Estimate &e) {
    return e.layout.pp == 3 && !e.layout.recompute &&
           e.layout.split == std::vector<int64_t>{2, 2, 2};
  });
  ASSERT_NE(even, result.ranked.end());
  EXPECT_NEAR(*llvm::max_element(even->stageSeconds), 15, 1e-3);
  EXPECT_GT(pipelined->tokensPerGpuPerSecond, even->tokensPerGpuPerSecond);
}

TEST(EstimatorTest, LayoutTextRoundTripsAndRejectsNonsense) {
  llvm::Expected<Layout> layout =
      parseLayout("dp=32,tp=4,ep=4,pp=3,mbs=2,split=5+4+3,zero1,recompute");
  ASSERT_TRUE(static_cast<bool>(layout));
  EXPECT_EQ(formatLayout(*layout),
            "dp=32,tp=4,ep=4,pp=3,mbs=2,split=5+4+3,zero1,recompute");
  for (const char *bad : {"dp=0", "dp=x", "tp=4x", "fsdp=2", "zero1=1", "dp",
                          "pp=2,split=1+2+3", "split=1+-2"}) {
    llvm::Expected<Layout> parsed = parseLayout(bad);
    EXPECT_FALSE(static_cast<bool>(parsed)) << bad;
    llvm::consumeError(parsed.takeError());
  }
  auto error = [](const char *text) {
    llvm::Expected<Layout> parsed = parseLayout(text);
    return parsed ? std::string() : llvm::toString(parsed.takeError());
  };
  EXPECT_EQ(error("dp=8, ,tp=2, "), "");
  EXPECT_EQ(error("dp=64,dp=64"), "--layout: 'dp' is given twice");
  EXPECT_EQ(error("zero1,zero1"), "--layout: 'zero1' is given twice");
  EXPECT_EQ(error("pp=2,split=1+1,split=1+1"),
            "--layout: 'split' is given twice");
  EXPECT_EQ(error("dp=9223372036854775807"),
            "--layout: 'dp' = 9223372036854775807 is too large (at most 2^31 "
            "- 1)");
}

TEST(EstimatorTest, ClusterFilesAreCheckedKeyByKey) {
  auto error = [](const std::string &text) {
    llvm::Expected<Cluster> cluster = parseCluster(text, "c.json");
    return cluster ? std::string() : llvm::toString(cluster.takeError());
  };
  EXPECT_EQ(error("[]"), "c.json: not a JSON object");
  EXPECT_EQ(error(R"({"gpus": 8, "nvlink": 1})"),
            "c.json: unknown key 'nvlink'");
  EXPECT_EQ(error(R"({"gpus": 8})"),
            "c.json: required key 'gpus_per_node' is missing");
  // Values far outside any machine are refused, not estimated with.
  auto cluster = [](const std::string &peak, const std::string &bandwidth) {
    return R"({"gpus": 8, "gpus_per_node": 8, "peak_bf16_tflops": )" + peak +
           R"(, "hbm_gb": 80, "hbm_bandwidth_gb_per_s": 3350,)"
           R"( "reserved_memory_gb": 4, "intra_node_bandwidth_gb_per_s": 450,)"
           R"( "intra_node_latency_us": 5, "inter_node_bandwidth_gb_per_s": )" +
           bandwidth +
           R"(, "inter_node_latency_us": 10, "gemm_efficiency": 0.7,)"
           R"( "gemm_half_efficiency_dim": 128, "attention_efficiency": 0.5,)"
           R"( "memory_efficiency": 0.8, "collective_efficiency": 0.75})";
  };
  EXPECT_EQ(error(cluster("989", "50")), "");
  EXPECT_EQ(error(cluster("1e308", "50")),
            "c.json: key 'peak_bf16_tflops' = 1e+308 is outside the "
            "plausible range [1e-6, 1e9]");
  EXPECT_EQ(error(cluster("989", "1e-300")),
            "c.json: key 'inter_node_bandwidth_gb_per_s' = 1e-300 is outside "
            "the plausible range [1e-6, 1e9]");
}

} // namespace

// The estimator times attention by the scores its kernels compute: all, a
// causal half, or a window's band, W * seq - W^2 / 2 of seq^2 (the
// continuum limit of W (W + 1) / 2 + (seq - W) W).
TEST(EstimatorTest, AttentionComputesTheScoresItsMaskShows) {
  EXPECT_EQ(attentionScoreFraction({false}, 1000), 1);
  EXPECT_EQ(attentionScoreFraction({true}, 1000), 0.5);
  EXPECT_EQ(attentionScoreFraction({true, 1000}, 1000), 0.5);
  EXPECT_EQ(attentionScoreFraction({true, 4000}, 1000), 0.5);
  EXPECT_DOUBLE_EQ(attentionScoreFraction({true, 100}, 1000),
                   (100.0 * 1000 - 100.0 * 100 / 2) / 1e6);
  EXPECT_DOUBLE_EQ(attentionScoreFraction({true, 250}, 1000), 0.21875);
}
