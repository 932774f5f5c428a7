//===- TransformersFamilies.cpp - the table of transformers' families -----===//
//
// Each transformers family that the importer reads and moe-export writes:
// its names, its config class's defaults, its keys' and tensors' spellings
// and its sliding-window rule (TransformersModel's fields say what each
// means).
//
//===----------------------------------------------------------------------===//

#include "TransformersFamilies.h"

namespace {

using mlir::moe::GateScoring;
using mlir::moe::QkNorm;
using mlir::moe::SlidingWindow;
using mlir::moe::TransformersModel;

TransformersModel family(const char *name, const char *architecture,
                         const char *modelType, const char *configClass) {
  TransformersModel model;
  model.name = name;
  model.architecture = architecture;
  model.modelType = modelType;
  model.configClass = configClass;
  return model;
}

/// `base`'s model under another family's names: a class derived from its.
TransformersModel variant(TransformersModel base, const char *name,
                          const char *architecture, const char *modelType,
                          const char *configClass) {
  base.name = name;
  base.architecture = architecture;
  base.modelType = modelType;
  base.configClass = configClass;
  return base;
}

/// DeepSeek-V3's MoE layers: sigmoid scores chosen with a bias, in groups,
/// their weights scaled, beside ungated shared experts, no load-balancing
/// loss, under Qwen's expert names (Dots1's, MiniCPM5-MoE's, EXAONE-MoE's).
void withDeepSeekV3Layers(TransformersModel &model) {
  model.moe = true;
  model.auxLoss = false;
  model.scoring = GateScoring::sigmoid;
  model.expertBias = true;
  model.scalesWeights = true;
  model.expertGroups = true;
  model.ungatedSharedExperts = true;
  model.expertNames = moert::ExpertNames::Qwen;
}

} // namespace

/// In the order transformersModelOf prefers them.
const std::vector<TransformersModel> &mlir::moe::detail::families() {
  static const std::vector<TransformersModel> all = [] {
    TransformersModel llama =
        family("Llama", "LlamaForCausalLM", "llama", "LlamaConfig");

    TransformersModel mistral =
        family("Mistral", "MistralForCausalLM", "mistral", "MistralConfig");
    mistral.slidingWindow = SlidingWindow::applied;
    mistral.windowSize = 4096;
    mistral.kvHeads = 8;

    TransformersModel qwen2 =
        family("Qwen2", "Qwen2ForCausalLM", "qwen2", "Qwen2Config");
    qwen2.qkvBias = true;
    qwen2.slidingWindow = SlidingWindow::switchedFrom;
    qwen2.windowSize = 4096;
    qwen2.kvHeads = 32;

    TransformersModel qwen3 =
        family("Qwen3", "Qwen3ForCausalLM", "qwen3", "Qwen3Config");
    qwen3.qkNorm = QkNorm::perHead;
    qwen3.slidingWindow = SlidingWindow::switchedFrom;
    qwen3.windowSize = 4096;
    qwen3.kvHeads = 32;
    qwen3.headDim = 128;

    // ERNIE 4.5 (Baidu's dense models): Llama's with RoPE turning pairs
    // (2i, 2i + 1), heads 128 wide, tied embeddings and padding token 0 by
    // default; use_bias (biases on every projection) is refused.
    TransformersModel ernie = family("ERNIE 4.5", "Ernie4_5ForCausalLM",
                                     "ernie4_5", "Ernie4_5Config");
    ernie.interleavedRope = true;
    ernie.kvHeads = 2;
    ernie.headDim = 128;
    ernie.ropeTheta = 5e5;
    ernie.rmsNormEps = 1e-5;
    ernie.padTokenId = 0;
    ernie.tiedEmbeddings = true;

    // Granite (IBM's Granite 3): Llama's model with muP's multipliers.
    TransformersModel granite =
        family("Granite", "GraniteForCausalLM", "granite", "GraniteConfig");
    granite.muP = true;

    // OLMo 2 (AllenAI's): each sublayer's output normalized before its
    // residual add, the whole queries and keys normalized (as wide as
    // their heads together).
    TransformersModel olmo2 =
        family("OLMo 2", "Olmo2ForCausalLM", "olmo2", "Olmo2Config");
    olmo2.postNorms = true;
    olmo2.qkNorm = QkNorm::whole;
    olmo2.rmsNormEps = 1e-5;
    olmo2.padTokenId = 1;

    // OLMo 3: OLMo 2's model with a window on all but every fourth layer,
    // each layer type's RoPE its own.
    TransformersModel olmo3 =
        variant(olmo2, "OLMo 3", "Olmo3ForCausalLM", "olmo3", "Olmo3Config");
    olmo3.slidingWindow = SlidingWindow::patterned;
    olmo3.windowSize = 4096;
    olmo3.ropeByLayerType = true;
    olmo3.nullWindowFails = true;
    olmo3.ropeTheta = 5e5;

    TransformersModel mixtral =
        family("Mixtral", "MixtralForCausalLM", "mixtral", "MixtralConfig");
    mixtral.moe = true;
    mixtral.slidingWindow = SlidingWindow::applied;
    mixtral.kvHeads = 8;
    mixtral.ropeTheta = 1e6;
    mixtral.rmsNormEps = 1e-5;
    mixtral.experts = 8;
    mixtral.topK = 2;
    mixtral.expertsByIntermediateSize = true;
    mixtral.alwaysRenormalizes = true;

    // FlexOlmo (AllenAI's): OLMoE's MoE layers (top-k not renormalized by
    // default, its load-balancing loss) on OLMo 2's layers.
    TransformersModel flexOlmo = family("FlexOlmo", "FlexOlmoForCausalLM",
                                        "flex_olmo", "FlexOlmoConfig");
    flexOlmo.moe = true;
    flexOlmo.postNorms = true;
    flexOlmo.qkNorm = QkNorm::whole;
    flexOlmo.ropeTheta = 5e5;
    flexOlmo.rmsNormEps = 1e-6;
    flexOlmo.padTokenId = 100277;
    flexOlmo.auxLossCoeff = 0.01;
    flexOlmo.experts = 7;
    flexOlmo.topK = 5;
    flexOlmo.expertsByIntermediateSize = true;
    flexOlmo.expertsKey = "num_experts";
    flexOlmo.otherExpertsKey = "num_local_experts";
    flexOlmo.expertNames = moert::ExpertNames::Qwen;

    // Granite MoE (IBM's Granite 3.0 MoE): Mixtral's MoE layers and
    // load-balancing loss with Llama's attention (no window) and muP's
    // multipliers, its experts' gate and up rows fused in its checkpoints.
    TransformersModel graniteMoe =
        family("Granite MoE", "GraniteMoeForCausalLM", "granitemoe",
               "GraniteMoeConfig");
    graniteMoe.moe = true;
    graniteMoe.muP = true;
    graniteMoe.experts = 8;
    graniteMoe.topK = 2;
    graniteMoe.expertsByIntermediateSize = true;
    graniteMoe.alwaysRenormalizes = true;
    graniteMoe.expertNames = moert::ExpertNames::Granite;

    // Granite MoE Shared (IBM's): Granite MoE with a shared MLP beside the
    // experts, ungated and shared_intermediate_size wide, its gate and up
    // rows fused in its checkpoints (shared_mlp.input_linear) as the
    // experts' are.
    TransformersModel graniteMoeShared =
        variant(graniteMoe, "Granite MoE Shared", "GraniteMoeSharedForCausalLM",
                "granitemoeshared", "GraniteMoeSharedConfig");
    graniteMoeShared.sharedWidthKey = "shared_intermediate_size";

    // Granite SWA and Granite MoE SWA (IBM's GraniteSWA): Granite's and
    // Granite MoE Shared's layers, all but every fourth from the first
    // sliding (within 128 by default), a learned sink in each head's
    // softmax, and each layer's RoPE base in layer_rope_theta (0 for none).
    auto withSlidingSinks = [](TransformersModel &model) {
      model.slidingWindow = SlidingWindow::patterned;
      model.fullAttentionFirst = true;
      model.windowSize = 128;
      model.nullWindowFails = true;
      model.attentionSinks = true;
      model.layerRopeTheta = true;
    };
    TransformersModel graniteSwa =
        variant(granite, "Granite SWA", "GraniteSWAForCausalLM", "granite_swa",
                "GraniteSWAConfig");
    withSlidingSinks(graniteSwa);
    graniteSwa.kvHeads = 4;
    graniteSwa.rmsNormEps = 1e-5;
    graniteSwa.tiedEmbeddings = true;
    TransformersModel graniteMoeSwa =
        variant(graniteMoeShared, "Granite MoE SWA", "GraniteMoeSWAForCausalLM",
                "granitemoe_swa", "GraniteMoeSWAConfig");
    withSlidingSinks(graniteMoeSwa);
    graniteMoeSwa.expertNames = moert::ExpertNames::GraniteSwa;

    TransformersModel qwen3Moe = family("Qwen3-MoE", "Qwen3MoeForCausalLM",
                                        "qwen3_moe", "Qwen3MoeConfig");
    qwen3Moe.moe = true;
    qwen3Moe.qkNorm = QkNorm::perHead;
    qwen3Moe.slidingWindow = SlidingWindow::switchedAll;
    qwen3Moe.windowSize = 4096;
    qwen3Moe.kvHeads = 4;
    qwen3Moe.ropeTheta = 1e4;
    qwen3Moe.rmsNormEps = 1e-6;
    qwen3Moe.experts = 128;
    qwen3Moe.topK = 8;
    qwen3Moe.expertSize = 768;
    qwen3Moe.denseSize = 6144;
    qwen3Moe.expertsKey = "num_experts";
    qwen3Moe.otherExpertsKey = "num_local_experts";
    qwen3Moe.sparseLayerKeys = true;
    qwen3Moe.expertNames = moert::ExpertNames::Qwen;

    // OLMoE's q_norm and k_norm normalize the whole projections (weights of
    // hidden_size and of the key-value heads' width), before the heads are
    // split.
    TransformersModel olmoe =
        family("OLMoE", "OlmoeForCausalLM", "olmoe", "OlmoeConfig");
    olmoe.moe = true;
    olmoe.qkNorm = QkNorm::whole;
    olmoe.wholeNormHiddenSize = true;
    olmoe.ropeTheta = 1e4;
    olmoe.padTokenId = 1;
    olmoe.auxLossCoeff = 0.01;
    olmoe.rmsNormEps = 1e-5;
    olmoe.experts = 64;
    olmoe.topK = 8;
    olmoe.expertsByIntermediateSize = true;
    olmoe.denseSize = 2048;
    olmoe.expertsKey = "num_experts";
    olmoe.otherExpertsKey = "num_local_experts";
    olmoe.expertNames = moert::ExpertNames::Qwen;

    // Qwen2-MoE's shared expert (Qwen1.5-MoE's) passes every token beside
    // the routed ones; qkv_bias gives its q, k and v projections biases.
    TransformersModel qwen2Moe = family("Qwen2-MoE", "Qwen2MoeForCausalLM",
                                        "qwen2_moe", "Qwen2MoeConfig");
    qwen2Moe.moe = true;
    qwen2Moe.qkvBias = true;
    qwen2Moe.qkvBiasKey = "qkv_bias";
    qwen2Moe.slidingWindow = SlidingWindow::switchedAlternating;
    qwen2Moe.windowSize = 4096;
    qwen2Moe.kvHeads = 16;
    qwen2Moe.experts = 60;
    qwen2Moe.topK = 4;
    qwen2Moe.expertSize = 1408;
    qwen2Moe.denseSize = 5632;
    qwen2Moe.sharedExpertSize = 5632;
    qwen2Moe.expertsKey = "num_experts";
    qwen2Moe.otherExpertsKey = nullptr;
    qwen2Moe.sparseLayerKeys = true;
    qwen2Moe.expertNames = moert::ExpertNames::Qwen;

    // Dots1 (rednote's dots.llm1): Qwen3's attention and DeepSeek-V3's MoE
    // layers, its router's sigmoid scores chosen with a bias and scaled by
    // routed_scaling_factor, ungated shared experts beside the routed ones,
    // dense layers first (first_k_dense_replace), no load-balancing loss.
    TransformersModel dots1 =
        family("Dots1", "Dots1ForCausalLM", "dots1", "Dots1Config");
    withDeepSeekV3Layers(dots1);
    dots1.qkNorm = QkNorm::perHead;
    dots1.slidingWindow = SlidingWindow::appliedFrom;
    dots1.windowSize = 4096;
    dots1.maxWindowLayers = 62;
    dots1.kvHeads = 32;
    dots1.expertSize = 1408;
    dots1.denseSize = 10944;
    dots1.expertsKey = "n_routed_experts";
    dots1.otherExpertsKey = "num_local_experts";
    dots1.firstDenseLayers = 0;
    dots1.zeroSharedExperts = "empty ones, their weights 0 wide";

    // GLM-4-MoE (Zhipu's GLM-4.5 and later): Dots1's MoE layers, one
    // shared expert and one dense layer by default, with an attention whose
    // query and key norms (use_qk_norm) and q, k and v biases
    // (attention_bias) are keys, rotating half of each head by default
    // (partial_rotary_factor), without a sliding window.
    TransformersModel glm4Moe = variant(
        dots1, "GLM-4-MoE", "Glm4MoeForCausalLM", "glm4_moe", "Glm4MoeConfig");
    glm4Moe.qkNorm = QkNorm::none;
    glm4Moe.qkNormKey = "use_qk_norm";
    glm4Moe.qkvBiasKey = "attention_bias";
    glm4Moe.partialRotaryFactor = 0.5;
    glm4Moe.slidingWindow = SlidingWindow::ignored;
    glm4Moe.windowSize = 0;
    glm4Moe.kvHeads = 8;
    glm4Moe.rmsNormEps = 1e-5;
    glm4Moe.experts = 128;
    glm4Moe.topK = 8;
    glm4Moe.normTopKProb = true;
    glm4Moe.sharedExperts = 1;
    glm4Moe.firstDenseLayers = 1;
    glm4Moe.predictionLayersKey = "num_nextn_predict_layers";

    // DeepSeek-V3 (and R1, and the models built on it): GLM-4-MoE's MoE
    // layers, 256 experts in 8 groups routed to the best 4 by default,
    // three dense layers first, under multi-head latent attention, whose
    // RoPE turns pairs where rope_interleave says so (by default).
    TransformersModel deepseekV3 =
        variant(glm4Moe, "DeepSeek-V3", "DeepseekV3ForCausalLM", "deepseek_v3",
                "DeepseekV3Config");
    deepseekV3.qkNormKey = nullptr;
    deepseekV3.qkvBiasKey = nullptr;
    deepseekV3.partialRotaryFactor = std::nullopt;
    deepseekV3.interleavedRope = true;
    deepseekV3.readsRopeInterleave = true;
    deepseekV3.latentAttention =
        mlir::moe::LatentAttention{/*queryRank=*/1536, /*kvRank=*/512,
                                   /*nopeHeadDim=*/128, /*ropeHeadDim=*/64,
                                   /*valueHeadDim=*/128};
    deepseekV3.kvHeads = 128;
    deepseekV3.rmsNormEps = 1e-6;
    deepseekV3.experts = 256;
    deepseekV3.expertSize = 2048;
    deepseekV3.denseSize = 18432;
    deepseekV3.routedScale = 2.5;
    deepseekV3.routerGroups = 8;
    deepseekV3.routerGroupTopK = 4;
    deepseekV3.firstDenseLayers = 3;
    deepseekV3.keyAliases = {{"num_mtp_layers", "num_nextn_predict_layers"}};

    // DeepSeek-V2 (and V2-Lite, Coder-V2): DeepSeek-V3's attention (RoPE
    // always turning pairs) over MoE layers that weigh the top-k of a
    // softmax, never renormalized, scaled by routed_scaling_factor (1 by
    // default), chosen among all experts (topk_method "greedy") or within
    // the groups of best expert (group_limited_greedy), beside two shared
    // experts, the first first_k_dense_replace layers dense (0 by default).
    TransformersModel deepseekV2 =
        variant(deepseekV3, "DeepSeek-V2", "DeepseekV2ForCausalLM",
                "deepseek_v2", "DeepseekV2Config");
    deepseekV2.readsRopeInterleave = false;
    deepseekV2.kvHeads = 0;
    deepseekV2.experts = 64;
    deepseekV2.topK = 0;
    deepseekV2.expertSize = 1407;
    deepseekV2.denseSize = 11008;
    deepseekV2.normTopKProb = false;
    deepseekV2.neverRenormalizes = true;
    deepseekV2.scoring = GateScoring::softmax;
    deepseekV2.expertBias = false;
    deepseekV2.routedScale = 1;
    deepseekV2.routerGroups = 0;
    deepseekV2.routerGroupTopK = 0;
    deepseekV2.groupScoreTop = 1;
    deepseekV2.topkMethod = "greedy";
    deepseekV2.sharedExperts = 2;
    deepseekV2.firstDenseLayers = 0;
    deepseekV2.otherExpertsKey = "num_experts";
    deepseekV2.predictionLayersKey = nullptr;
    deepseekV2.keyAliases = {};

    // GLM-4-MoE-Lite (Zhipu's GLM-4.7-Flash): DeepSeek-V3's model with
    // other defaults, its dense layers placed by mlp_layer_types (the first
    // dense by default), its head_dim the rotated part's width
    // (attribute_map).
    TransformersModel glm4MoeLite =
        variant(deepseekV3, "GLM-4-MoE-Lite", "Glm4MoeLiteForCausalLM",
                "glm4_moe_lite", "Glm4MoeLiteConfig");
    glm4MoeLite.latentAttention =
        mlir::moe::LatentAttention{/*queryRank=*/768, /*kvRank=*/512,
                                   /*nopeHeadDim=*/192, /*ropeHeadDim=*/64,
                                   /*valueHeadDim=*/256};
    glm4MoeLite.kvHeads = 20;
    glm4MoeLite.rmsNormEps = 1e-5;
    glm4MoeLite.experts = 64;
    glm4MoeLite.topK = 4;
    glm4MoeLite.expertSize = 1536;
    glm4MoeLite.denseSize = 10240;
    glm4MoeLite.routedScale = 1.8;
    glm4MoeLite.routerGroups = 1;
    glm4MoeLite.routerGroupTopK = 1;
    glm4MoeLite.firstDenseLayers = std::nullopt;
    glm4MoeLite.mlpLayerTypes = true;
    glm4MoeLite.keyAliases = {{"head_dim", "qk_rope_head_dim"}};

    // Solar Open (Upstage): GLM-4-MoE's MoE layers in every layer, with
    // Llama's attention (q, k and v biases by attention_bias, no query and
    // key norms, whole heads rotated) and heads 128 wide by default. Its
    // class has no intermediate_size (GLM-4-MoE's default stands, unused).
    TransformersModel solarOpen =
        variant(glm4Moe, "Solar Open", "SolarOpenForCausalLM", "solar_open",
                "SolarOpenConfig");
    solarOpen.qkNormKey = nullptr;
    solarOpen.partialRotaryFactor = std::nullopt;
    solarOpen.headDim = 128;
    solarOpen.ropeTheta = 1e6;
    solarOpen.expertSize = 1280;
    solarOpen.firstDenseLayers = std::nullopt;
    solarOpen.predictionLayersKey = nullptr;

    // MiniMax-M2: Mixtral's names and experts (intermediate_size wide),
    // routed by sigmoid scores chosen with a bias (the MoE block's) and
    // always renormalized, its whole queries and keys normalized (as wide
    // as the heads together), part of each head rotated (rotary_dim in its
    // released configs), no window.
    TransformersModel minimaxM2 = family("MiniMax-M2", "MiniMaxM2ForCausalLM",
                                         "minimax_m2", "MiniMaxM2Config");
    minimaxM2.moe = true;
    minimaxM2.qkNorm = QkNorm::whole;
    minimaxM2.partialRotaryFactor = 1.0;
    minimaxM2.rotaryDimKey = "rotary_dim";
    minimaxM2.kvHeads = 8;
    minimaxM2.headDim = 128;
    minimaxM2.ropeTheta = 5e6;
    minimaxM2.rmsNormEps = 1e-6;
    minimaxM2.experts = 256;
    minimaxM2.topK = 8;
    minimaxM2.expertsByIntermediateSize = true;
    minimaxM2.alwaysRenormalizes = true;
    minimaxM2.scoring = GateScoring::sigmoid;
    minimaxM2.expertBias = true;
    minimaxM2.expertNames = moert::ExpertNames::MiniMax;

    // ERNIE 4.5 MoE (Baidu's ERNIE-4.5-21B-A3B, ERNIE-4.5-300B-A47B): the
    // dense ERNIE 4.5's attention, MoE layers from the second on (its own
    // keys place them), softmax scores chosen with a bias
    // (moe_statics.e_score_correction_bias) and always renormalized, two
    // ungated shared experts by default (0 builds none).
    TransformersModel ernieMoe =
        family("ERNIE 4.5 MoE", "Ernie4_5_MoeForCausalLM", "ernie4_5_moe",
               "Ernie4_5_MoeConfig");
    ernieMoe.moe = true;
    ernieMoe.interleavedRope = true;
    ernieMoe.kvHeads = 4;
    ernieMoe.ropeTheta = 5e5;
    ernieMoe.rmsNormEps = 1e-5;
    ernieMoe.padTokenId = 0;
    ernieMoe.tiedEmbeddings = true;
    ernieMoe.experts = 64;
    ernieMoe.topK = 6;
    ernieMoe.topKKey = "moe_k";
    ernieMoe.expertSize = 1536;
    ernieMoe.denseSize = 12288;
    ernieMoe.alwaysRenormalizes = true;
    ernieMoe.expertBias = true;
    ernieMoe.ungatedSharedExperts = true;
    ernieMoe.sharedExperts = 2;
    ernieMoe.sharedExpertsKey = "moe_num_shared_experts";
    ernieMoe.expertsKey = "moe_num_experts";
    ernieMoe.firstMoeLayer = 1;
    ernieMoe.expertNames = moert::ExpertNames::Ernie;
    ernieMoe.predictionLayersKey = "num_nextn_predict_layers";

    // HY V3 (Tencent's Hy3): Qwen3's attention without a window and
    // DeepSeek-V3's router without groups (sigmoid scores chosen with a
    // bias, always renormalized, scaled by router_scaling_factor), ungated
    // shared experts counted by num_shared_experts, dense layers named by
    // mlp_layer_types (the first by default), no load-balancing loss.
    TransformersModel hunyuan =
        family("HY V3", "HYV3ForCausalLM", "hy_v3", "HYV3Config");
    hunyuan.moe = true;
    hunyuan.qkNorm = QkNorm::perHead;
    hunyuan.kvHeads = 8;
    hunyuan.headDim = 128;
    hunyuan.ropeTheta = 11158840;
    hunyuan.rmsNormEps = 1e-5;
    hunyuan.experts = 192;
    hunyuan.topK = 8;
    hunyuan.expertSize = 1536;
    hunyuan.denseSize = 13312;
    hunyuan.alwaysRenormalizes = true;
    hunyuan.auxLoss = false;
    hunyuan.scoring = GateScoring::sigmoid;
    hunyuan.expertBias = true;
    hunyuan.scalesWeights = true;
    hunyuan.scaleKey = "router_scaling_factor";
    hunyuan.routedScale = 2.826;
    hunyuan.ungatedSharedExperts = true;
    hunyuan.sharedExperts = 1;
    hunyuan.sharedExpertsKey = "num_shared_experts";
    hunyuan.zeroSharedExperts = "one 'intermediate_size' wide";
    hunyuan.expertsKey = "num_experts";
    hunyuan.otherExpertsKey = "num_local_experts";
    hunyuan.mlpLayerTypes = true;
    hunyuan.expertNames = moert::ExpertNames::Hunyuan;

    // HunYuan MoE V1 (Tencent's Hunyuan-A13B): Mixtral's routing (always
    // renormalized, no load-balancing loss) beside one ungated shared MLP
    // as wide as the experts (intermediate_size), every layer a MoE layer,
    // each query and key head normalized after RoPE; its RoPE's "dynamic"
    // scaling with an alpha is a fixed NTK-alpha base.
    TransformersModel hunyuanV1 =
        family("HunYuan MoE V1", "HunYuanMoEV1ForCausalLM", "hunyuan_v1_moe",
               "HunYuanMoEV1Config");
    hunyuanV1.moe = true;
    hunyuanV1.qkNorm = QkNorm::perHeadRotated;
    hunyuanV1.requiresHeadDim = true;
    hunyuanV1.ntkAlpha = true;
    hunyuanV1.ropeTheta = 1e4;
    hunyuanV1.rmsNormEps = 1e-5;
    hunyuanV1.padTokenId = 0;
    hunyuanV1.experts = 1;
    hunyuanV1.topK = 1;
    hunyuanV1.topKKey = "moe_topk";
    hunyuanV1.perLayerTopK = true;
    hunyuanV1.expertsByIntermediateSize = true;
    hunyuanV1.alwaysRenormalizes = true;
    hunyuanV1.auxLoss = false;
    hunyuanV1.ungatedSharedExperts = true;
    hunyuanV1.sharedExperts = 1;
    hunyuanV1.sharedExpertsKey = nullptr;
    hunyuanV1.expertsKey = "num_experts";
    hunyuanV1.otherExpertsKey = "num_local_experts";
    hunyuanV1.expertNames = moert::ExpertNames::HunyuanV1;

    // HunYuan Dense V1 (Tencent's dense Hunyuan models): HunYuan MoE V1's
    // attention on Llama's layers.
    TransformersModel hunyuanDense =
        family("HunYuan Dense V1", "HunYuanDenseV1ForCausalLM",
               "hunyuan_v1_dense", "HunYuanDenseV1Config");
    hunyuanDense.qkNorm = QkNorm::perHeadRotated;
    hunyuanDense.requiresHeadDim = true;
    hunyuanDense.ntkAlpha = true;
    hunyuanDense.rmsNormEps = 1e-5;
    hunyuanDense.padTokenId = 0;
    hunyuanDense.expertNames = moert::ExpertNames::HunyuanV1;

    // MiniCPM5-MoE (OpenBMB's): DeepSeek-V3's MoE layers (sigmoid scores
    // chosen with a bias, renormalized, scaled by routed_scaling_factor, in
    // groups, beside ungated shared experts; no load-balancing loss), the
    // dense layers placed by mlp_layer_types (else the first
    // first_k_dense_replace), on Llama's attention whose output each query
    // head's gate scales (q_proj holds each head's query, then its gate).
    TransformersModel miniCpm5 =
        family("MiniCPM5-MoE", "MiniCPM5MoeForCausalLM", "minicpm5_moe",
               "MiniCPM5MoeConfig");
    withDeepSeekV3Layers(miniCpm5);
    miniCpm5.gatedAttention = true;
    miniCpm5.kvHeads = 2;
    miniCpm5.headDim = 128;
    miniCpm5.ropeTheta = 5e6;
    miniCpm5.rmsNormEps = 1e-6;
    miniCpm5.padTokenId = 1;
    miniCpm5.experts = 160;
    miniCpm5.topK = 16;
    miniCpm5.expertSize = 512;
    miniCpm5.denseSize = 8192;
    miniCpm5.normTopKProb = true;
    miniCpm5.routedScale = 3.66;
    miniCpm5.sharedExperts = 1;
    miniCpm5.expertsKey = "n_routed_experts";
    miniCpm5.otherExpertsKey = "num_local_experts";
    miniCpm5.mlpLayerTypes = true;
    miniCpm5.firstDenseWithoutLayerTypes = true;

    // Sarvam-MoE (Sarvam AI's Sarvam-30B and -105B): transformers'
    // GLM-4-MoE under a config class of its own, whole heads rotated and
    // each query and key head normalized by default, its released config's
    // key names read as GLM-4-MoE's. Its checkpoints keep Ant's Bailing
    // names (word_embeddings, a fused attention.query_key_value, ...),
    // which WeightSource reads. GLM-4-MoE, which computes the same, is
    // preferred for exports.
    TransformersModel sarvamMoe = glm4Moe;
    sarvamMoe.name = "Sarvam-MoE";
    sarvamMoe.modelType = "sarvam_moe";
    sarvamMoe.configClass = "SarvamMoEConfig";
    sarvamMoe.qkNorm = QkNorm::perHead;
    sarvamMoe.partialRotaryFactor = 1.0;
    sarvamMoe.kvHeads = 4;
    sarvamMoe.headDim = 64;
    sarvamMoe.ropeTheta = 8e6;
    sarvamMoe.rmsNormEps = 1e-6;
    sarvamMoe.padTokenId = 0;
    sarvamMoe.topK = 6;
    sarvamMoe.expertSize = 1024;
    sarvamMoe.denseSize = 8192;
    sarvamMoe.routedScale = 2.5;
    sarvamMoe.keyAliases = {{"num_experts", "n_routed_experts"},
                            {"num_shared_experts", "n_shared_experts"},
                            {"use_qkv_bias", "attention_bias"},
                            {"num_mtp_layers", "num_nextn_predict_layers"}};

    // Param2-MoE (BharatGen's Param2-17B-A2.4B): Sarvam-MoE's model and
    // names with other defaults, tied embeddings among them.
    TransformersModel param2Moe = sarvamMoe;
    param2Moe.name = "Param2-MoE";
    param2Moe.modelType = "param2moe";
    param2Moe.configClass = "Param2MoeConfig";
    param2Moe.kvHeads = 8;
    param2Moe.ropeTheta = 5e5;
    param2Moe.tiedEmbeddings = true;
    param2Moe.experts = 64;
    param2Moe.expertSize = 2048;
    param2Moe.denseSize = 9216;
    param2Moe.sharedExperts = 2;

    // EXAONE 4 (LG AI Research's): OLMo 2's norms after each sublayer on
    // Qwen3's attention (each query and key head normalized), a window on
    // all but every sliding_window_pattern-th layer, whose full-attention
    // layers apply no RoPE where the window is not null.
    TransformersModel exaone4 =
        family("EXAONE 4", "Exaone4ForCausalLM", "exaone4", "Exaone4Config");
    exaone4.postNorms = true;
    exaone4.qkNorm = QkNorm::perHead;
    exaone4.slidingWindow = SlidingWindow::patterned;
    exaone4.ropelessFullAttention = true;
    exaone4.windowPatternKey = "sliding_window_pattern";
    exaone4.windowSize = 4096;
    exaone4.kvHeads = 32;
    exaone4.rmsNormEps = 1e-5;

    // EXAONE-MoE (LG AI Research's K-EXAONE): EXAONE 4's attention, layers
    // and RoPE with norms before each sublayer, DeepSeek-V3's MoE layers
    // (Dots1's), the dense layers placed by mlp_layer_types (else the first
    // first_k_dense_replace), a shared MLP num_shared_experts times as wide
    // as the experts.
    TransformersModel exaoneMoe =
        variant(exaone4, "EXAONE-MoE", "ExaoneMoeForCausalLM", "exaone_moe",
                "ExaoneMoeConfig");
    withDeepSeekV3Layers(exaoneMoe);
    exaoneMoe.postNorms = false;
    exaoneMoe.nullWindowFails = true;
    exaoneMoe.padTokenId = 0;
    exaoneMoe.experts = 64;
    exaoneMoe.topK = 8;
    exaoneMoe.expertSize = 1024;
    exaoneMoe.denseSize = 16384;
    exaoneMoe.normTopKProb = true;
    exaoneMoe.routedScale = 2.5;
    exaoneMoe.sharedExperts = 1;
    exaoneMoe.sharedExpertsKey = "num_shared_experts";
    exaoneMoe.zeroSharedExperts = "an empty one, its weights 0 wide";
    exaoneMoe.expertsKey = "num_experts";
    exaoneMoe.otherExpertsKey = nullptr;
    exaoneMoe.mlpLayerTypes = true;
    exaoneMoe.firstDenseWithoutLayerTypes = true;
    exaoneMoe.savesFirstDenseBesideLayerTypes = true;

    return std::vector<TransformersModel>{
        llama,        mistral,          qwen2,      qwen3,
        ernie,        granite,          mixtral,    qwen3Moe,
        olmoe,        qwen2Moe,         dots1,      glm4Moe,
        solarOpen,    minimaxM2,        ernieMoe,   hunyuan,
        sarvamMoe,    param2Moe,        graniteMoe, olmo2,
        olmo3,        flexOlmo,         deepseekV3, glm4MoeLite,
        deepseekV2,   graniteMoeShared, hunyuanV1,  hunyuanDense,
        miniCpm5,     exaone4,          exaoneMoe,  graniteSwa,
        graniteMoeSwa};
  }();
  return all;
}
