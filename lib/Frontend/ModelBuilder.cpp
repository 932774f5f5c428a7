//===- ModelBuilder.cpp - emit a model as moe-dialect IR ------------------===//
//
// One Llama-style decoder (Mixtral when the config has experts): embedding,
// per layer RMSNorm -> attention with RoPE (after Qwen3's RMSNorm of each
// query and key head, where the config has it) -> residual -> RMSNorm -> MoE
// (with Qwen2-MoE's gated shared expert, where the config has one; or dense
// SwiGLU MLP) -> residual, final RMSNorm, LM head, cross-entropy,
// plus each MoE layer's coefficient times its auxiliary loss (and z-loss).
// Every op carries the Hugging Face name of its module as its location, so
// diagnostics point at the layer.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/MoeDialect.h"
#include "moert/StateNames.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/WithColor.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

using namespace mlir;

namespace {

// Keeps a row of equal logits finite; small next to any real spread.
constexpr double kGateNormEps = 1e-6;
// The label that transformers' loss ignores (PyTorch's cross_entropy
// default).
constexpr int64_t kIgnoreIndex = -100;

class ModelBuilder {
public:
  ModelBuilder(MLIRContext &context, const moe::ModelConfig &config,
               Type elementType)
      : config(config), elementType(elementType),
        b(UnknownLoc::get(&context), &context) {}

  OwningOpRef<ModuleOp> build();

private:
  RankedTensorType floatTensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, elementType);
  }
  RankedTensorType indexTensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getI32Type());
  }
  void setLocation(const std::string &name) {
    b.setLoc(NameLoc::get(b.getStringAttr(name)));
  }

  /// Builds the ops of transformer layer `layer` with `build` and gives
  /// each of them the layer attribute.
  template <typename BuildFn> auto inLayer(int64_t layer, BuildFn build) {
    Block *block = b.getInsertionBlock();
    Operation *before = block->empty() ? nullptr : &block->back();
    auto result = build();
    auto first = before ? std::next(before->getIterator()) : block->begin();
    for (Operation &op : llvm::make_range(first, block->end()))
      op.setAttr(moe::kLayerAttrName, b.getI64IntegerAttr(layer));
    return result;
  }

  /// What a global holds: a parameter (trained), a value of the config (a
  /// loss coefficient), or training state that the step moves otherwise.
  enum class Holds { Parameter, ConfigConstant, State };
  /// Declares global `name` at the top of the module and loads it.
  Value global(const std::string &name, ArrayRef<int64_t> shape,
               moe::InitKind kind, double value, Holds holds);
  Value parameter(const std::string &name, ArrayRef<int64_t> shape) {
    return global(name, shape, moe::InitKind::normal, config.initStd,
                  Holds::Parameter);
  }
  Value normWeight(const std::string &name, int64_t size) {
    return global(name, {size}, moe::InitKind::constant, 1.0, Holds::Parameter);
  }
  Value scalarConstant(double value) {
    auto type = floatTensor({});
    return arith::ConstantOp::create(
        b, type,
        DenseElementsAttr::get(type, b.getFloatAttr(elementType, value)));
  }

  /// `value` times `factor`: itself where the factor is 1.
  Value scaled(Value value, double factor) {
    if (factor == 1)
      return value;
    return moe::ScaleOp::create(b, value.getType(), value,
                                b.getF64FloatAttr(factor));
  }
  /// The window [offset, offset + width) of `input`'s last dimension.
  Value sliced(Value input, int64_t offset, int64_t width) {
    SmallVector<int64_t> shape(
        cast<RankedTensorType>(input.getType()).getShape());
    shape.back() = width;
    return moe::SliceOp::create(b, floatTensor(shape), input,
                                b.getI64IntegerAttr(offset));
  }
  /// Layer `layer`'s attention, its weights under `prefix`.
  Value attention(Value hidden, const std::string &prefix, int64_t layer);
  /// DeepSeek-V2's and V3's multi-head latent attention, where the config
  /// has one (attention() calls it).
  Value latentAttention(Value hidden, const std::string &prefix, int64_t layer);
  /// RoPE over heads `input` ([batch, seq, heads, width]), their first
  /// `rotaryDim` dimensions (all where null).
  Value rotated(Value input, int64_t layer, IntegerAttr rotaryDim = {});
  /// A SwiGLU MLP `width` wide over `hidden` ([..., hidden_size]), its
  /// weights `module`.gate_proj.weight and so on: a dense layer's, or a
  /// shared expert's.
  Value mlp(Value hidden, const std::string &module, int64_t width);
  /// The shared expert over the tokens `flat` [T, hidden_size]: Qwen2-MoE's,
  /// scaled by the sigmoid of its gate's logit, or DeepSeek's, ungated.
  Value sharedExpert(Value flat, const std::string &prefix);
  /// What the MoE layers add to a training forward: loss terms and named
  /// metrics (the function's extra results).
  struct TrainingTerms {
    SmallVector<Value> lossTerms;
    SmallVector<std::pair<std::string, Value>> metrics;
    /// Every layer's gate probabilities and choices, for a pooled aux loss.
    SmallVector<Value> gateProbs, gateIndices;
  };
  /// transformers' aux loss over all layers' tokens, its coefficient times it
  /// added to the loss terms.
  void addPooledAuxLoss(TrainingTerms &terms);
  /// Returns the MoE output and adds the layer's loss terms and metrics to
  /// `terms` (none when `terms` is null).
  Value moeBlock(Value hidden, const std::string &prefix, TrainingTerms *terms);
  /// The decoder from token ids to logits [batch, seq, vocab], adding the
  /// MoE layers' terms to `terms` when it is not null.
  Value buildLogits(Value inputIds, TrainingTerms *terms);
  /// @forward(input_ids, labels) -> loss, the function training
  /// differentiates.
  void buildForward();
  /// @logits(input_ids) -> logits, for evaluation and sampling.
  void buildLogitsFunction();
  /// @expert_similarity() -> one average pairwise cosine similarity per MoE
  /// layer.
  void buildExpertSimilarityFunction();

  const moe::ModelConfig &config;
  Type elementType;
  ImplicitLocOpBuilder b;
  ModuleOp module;
  func::FuncOp firstFunction; // globals are declared before it
  llvm::StringSet<> declared;
  int64_t tokens() const { return config.batchSize * config.seqLen; }
  /// Layer `layer`'s sliding window (ModelConfig::attentionWindow), or
  /// null.
  IntegerAttr attentionWindow(int64_t layer) {
    std::optional<int64_t> window = config.attentionWindow(layer);
    return window ? b.getI64IntegerAttr(*window) : IntegerAttr();
  }
};

Value ModelBuilder::global(const std::string &name, ArrayRef<int64_t> shape,
                           moe::InitKind kind, double value, Holds holds) {
  RankedTensorType type = floatTensor(shape);
  if (declared.insert(name).second) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(firstFunction);
    auto op = ml_program::GlobalOp::create(
        b, b.getStringAttr(name), TypeAttr::get(type), b.getUnitAttr(),
        /*value=*/nullptr, b.getStringAttr("private"));
    op->setAttr(moe::kInitAttrName,
                moe::InitAttr::get(b.getContext(), kind, APFloat(value)));
    if (holds == Holds::Parameter)
      op->setAttr(moe::kTrainableAttrName, b.getUnitAttr());
    if (holds == Holds::ConfigConstant)
      op->setAttr(moe::kConfigConstantAttrName, b.getUnitAttr());
  }
  return ml_program::GlobalLoadOp::create(
      b, type, FlatSymbolRefAttr::get(b.getStringAttr(name)));
}

Value ModelBuilder::rotated(Value input, int64_t layer, IntegerAttr rotaryDim) {
  moe::LayerRope rope = config.rope(layer);
  moe::RopeScalingAttr scaling =
      rope.scaling ? moe::ropeScalingAttr(b.getContext(), *rope.scaling)
                   : moe::RopeScalingAttr();
  UnitAttr interleaved = config.ropeInterleaved ? b.getUnitAttr() : UnitAttr();
  return moe::RopeOp::create(b, input.getType(), input,
                             b.getF64FloatAttr(rope.theta), rotaryDim, scaling,
                             interleaved, UnitAttr());
}

Value ModelBuilder::attention(Value hidden, const std::string &prefix,
                              int64_t layer) {
  if (config.latentAttention)
    return latentAttention(hidden, prefix, layer);
  int64_t batch = config.batchSize, seq = config.seqLen;
  int64_t headDim = config.headDim();
  setLocation(prefix + ".self_attn");
  // Qwen3 normalizes each query and key head before RoPE, HunYuan MoE V1
  // after it, OLMoE the whole query and key projections.
  auto normalize = [&](const char *name, Value input, int64_t width) {
    return moe::RmsNormOp::create(
        b, input.getType(), input,
        normWeight(prefix + ".self_attn." + name + "_norm.weight", width),
        b.getF64FloatAttr(config.rmsNormEps));
  };
  // Each head's `width` (a head's, or with gated attention a query head's
  // and its gate's).
  auto project = [&](const char *name, int64_t heads, bool normalized,
                     int64_t width) -> Value {
    std::string projection = prefix + ".self_attn." + name + "_proj";
    Value weight =
        parameter(projection + ".weight", {heads * width, config.hiddenSize});
    // Qwen2's biases start at 0, as transformers initializes them.
    Value bias = config.qkvBias
                     ? global(projection + ".bias", {heads * width},
                              moe::InitKind::constant, 0.0, Holds::Parameter)
                     : Value();
    Value flat = moe::LinearOp::create(
        b, floatTensor({batch, seq, heads * width}), hidden, weight, bias);
    if (normalized && config.qkNorm == moe::QkNorm::whole)
      flat = normalize(name, flat, heads * width);
    Value split = tensor::ExpandShapeOp::create(
        b, floatTensor({batch, seq, heads, width}), flat,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
    if (normalized && config.qkNorm == moe::QkNorm::perHead)
      split = normalize(name, split, width);
    return split;
  };
  // moe.attention scales the scores by 1 / sqrt(head_dim); muP's softmax
  // scale (Granite's attention_multiplier) goes onto the queries instead,
  // before RoPE (linear), whose result a bf16 step narrows, unless a norm
  // follows RoPE.
  auto withSoftmaxScale = [&](Value query) {
    if (!config.attentionMultiplier)
      return query;
    return scaled(query, *config.attentionMultiplier *
                             std::sqrt(static_cast<double>(headDim)));
  };
  bool normalizedAfterRope = config.qkNorm == moe::QkNorm::perHeadRotated;
  // MiniCPM5-MoE's q_proj gives each head's query, then its gate.
  Value query, gate;
  if (config.gatedAttention) {
    Value both =
        project("q", config.numHeads, /*normalized=*/false, 2 * headDim);
    query = sliced(both, 0, headDim);
    gate = sliced(both, headDim, headDim);
    if (config.qkNorm == moe::QkNorm::perHead)
      query = normalize("q", query, headDim);
  } else {
    query = project("q", config.numHeads, /*normalized=*/true, headDim);
  }
  if (!normalizedAfterRope)
    query = withSoftmaxScale(query);
  Value key = project("k", config.numKvHeads, /*normalized=*/true, headDim);
  Value value = project("v", config.numKvHeads, /*normalized=*/false, headDim);
  IntegerAttr rotaryDim = config.rotaryDim() != headDim
                              ? b.getI64IntegerAttr(config.rotaryDim())
                              : IntegerAttr();
  if (config.rotates(layer)) {
    query = rotated(query, layer, rotaryDim);
    key = rotated(key, layer, rotaryDim);
  }
  if (normalizedAfterRope) {
    query = withSoftmaxScale(normalize("q", query, headDim));
    key = normalize("k", key, headDim);
  }
  // GPT-OSS's and GraniteSWA's sinks, a logit a query head; from 0, as
  // GraniteSWA initializes them.
  Value sinks = config.attentionSinks
                    ? global(prefix + ".self_attn.sinks", {config.numHeads},
                             moe::InitKind::constant, 0.0, Holds::Parameter)
                    : Value();
  Value heads =
      moe::AttentionOp::create(b, query.getType(), query, key, value, sinks,
                               /*causal=*/true, attentionWindow(layer))
          .getResult();
  // Each element of the output times the sigmoid of its gate.
  if (gate)
    heads = moe::SigmoidScaleOp::create(b, heads.getType(), heads, gate);
  Value merged = tensor::CollapseShapeOp::create(
      b, floatTensor({batch, seq, config.numHeads * headDim}), heads,
      ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  Value outWeight = parameter(prefix + ".self_attn.o_proj.weight",
                              {config.hiddenSize, config.numHeads * headDim});
  return moe::LinearOp::create(b, hidden.getType(), merged, outWeight, Value());
}

Value ModelBuilder::latentAttention(Value hidden, const std::string &prefix,
                                    int64_t layer) {
  const moe::LatentAttention &mla = *config.latentAttention;
  int64_t batch = config.batchSize, seq = config.seqLen;
  int64_t heads = config.numHeads, headDim = mla.queryHeadDim();
  int64_t nope = mla.nopeHeadDim, rope = mla.ropeHeadDim;
  int64_t valueDim = mla.valueHeadDim;
  std::string module = prefix + ".self_attn.";
  setLocation(prefix + ".self_attn");
  auto widthOf = [](Value value) {
    return cast<RankedTensorType>(value.getType()).getShape().back();
  };
  auto withWidth = [&](Value value, int64_t width) {
    SmallVector<int64_t> shape(
        cast<RankedTensorType>(value.getType()).getShape());
    shape.back() = width;
    return floatTensor(shape);
  };
  auto project = [&](Value input, const char *name, int64_t width) -> Value {
    Value weight =
        parameter(module + name + ".weight", {width, widthOf(input)});
    return moe::LinearOp::create(b, withWidth(input, width), input, weight,
                                 Value());
  };
  // DeepSeek's latent norms have their class's epsilon, not rms_norm_eps.
  auto normalize = [&](Value input, const char *name) -> Value {
    return moe::RmsNormOp::create(
        b, input.getType(), input,
        normWeight(module + name + ".weight", widthOf(input)),
        b.getF64FloatAttr(moe::kLatentNormEps));
  };
  auto asHeads = [&](Value flat, int64_t count) -> Value {
    return tensor::ExpandShapeOp::create(
        b, floatTensor({batch, seq, count, widthOf(flat) / count}), flat,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  };
  auto padded = [&](Value input, int64_t width) -> Value {
    if (widthOf(input) == width)
      return input;
    return moe::PadOp::create(b, withWidth(input, width), input,
                              b.getI64IntegerAttr(0));
  };
  auto joined = [&](Value lhs, Value rhs) -> Value {
    return moe::ConcatOp::create(b, withWidth(lhs, widthOf(lhs) + widthOf(rhs)),
                                 lhs, rhs);
  };

  Value query =
      mla.queryRank
          ? project(normalize(project(hidden, "q_a_proj", *mla.queryRank),
                              "q_a_layernorm"),
                    "q_b_proj", heads * headDim)
          : project(hidden, "q_proj", heads * headDim);
  query = asHeads(query, heads);
  // The keys and values of every head from one latent, and one rotated key
  // part that every head reads.
  Value latent = project(hidden, "kv_a_proj_with_mqa", mla.kvRank + rope);
  Value sharedKey =
      rotated(asHeads(sliced(latent, mla.kvRank, rope), 1), layer);
  Value keysValues = asHeads(
      project(normalize(sliced(latent, 0, mla.kvRank), "kv_a_layernorm"),
              "kv_b_proj", heads * (nope + valueDim)),
      heads);
  Value key = joined(sliced(keysValues, 0, nope), sharedKey);
  Value value = sliced(keysValues, nope, valueDim);
  // moe.attention's heads share one width: the narrower of queries and
  // values is padded with zeros (vLLM pads DeepSeek's values so for
  // FlashAttention), and its scale 1 / sqrt(width) corrected on the
  // queries, as are YaRN's mscale_all_dim and muP's softmax scale.
  int64_t width = std::max(headDim, valueDim);
  double factor =
      config.attentionMultiplier
          ? *config.attentionMultiplier * std::sqrt(static_cast<double>(width))
          : std::sqrt(static_cast<double>(width) / headDim);
  if (config.ropeScaling && config.ropeMscaleAllDim) {
    double mscale =
        moe::yarnMscale(config.ropeScaling->factor, config.ropeMscaleAllDim);
    factor *= mscale * mscale;
  }
  query = scaled(query, factor);
  query =
      joined(sliced(query, 0, nope), rotated(sliced(query, nope, rope), layer));
  Value attended =
      moe::AttentionOp::create(b, withWidth(query, width), padded(query, width),
                               padded(key, width), padded(value, width),
                               /*sinks=*/Value(), /*causal=*/true,
                               attentionWindow(layer))
          .getResult();
  if (width != valueDim)
    attended = sliced(attended, 0, valueDim);
  Value merged = tensor::CollapseShapeOp::create(
      b, floatTensor({batch, seq, heads * valueDim}), attended,
      ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  return project(merged, "o_proj", config.hiddenSize);
}

Value ModelBuilder::mlp(Value hidden, const std::string &module,
                        int64_t width) {
  setLocation(module);
  SmallVector<int64_t> ffnShape(
      cast<RankedTensorType>(hidden.getType()).getShape());
  ffnShape.back() = width;
  auto ffnType = floatTensor(ffnShape);
  auto project = [&](const char *name) -> Value {
    Value weight =
        parameter(module + "." + name + ".weight", {width, config.hiddenSize});
    return moe::LinearOp::create(b, ffnType, hidden, weight, Value());
  };
  Value gate = project("gate_proj");
  Value up = project("up_proj");
  Value activation = moe::SwigluOp::create(b, ffnType, gate, up);
  Value down =
      parameter(module + ".down_proj.weight", {config.hiddenSize, width});
  return moe::LinearOp::create(b, hidden.getType(), activation, down, Value());
}

Value ModelBuilder::sharedExpert(Value flat, const std::string &prefix) {
  // DeepSeek's, added as it is.
  if (!config.sharedExpertGated)
    return mlp(flat, prefix + ".mlp.shared_experts",
               config.sharedExpertIntermediateSize);
  std::string module = prefix + ".mlp.shared_expert";
  Value expert = mlp(flat, module, config.sharedExpertIntermediateSize);
  Value gateWeight = parameter(module + "_gate.weight", {1, config.hiddenSize});
  Value logit = moe::LinearOp::create(b, floatTensor({tokens(), 1}), flat,
                                      gateWeight, Value());
  return moe::SigmoidScaleOp::create(b, expert.getType(), expert, logit);
}

Value ModelBuilder::moeBlock(Value hidden, const std::string &prefix,
                             TrainingTerms *terms) {
  std::string block = prefix + ".block_sparse_moe";
  setLocation(block);
  int64_t numTokens = tokens(), hiddenSize = config.hiddenSize;
  int64_t experts = config.numExperts, topK = config.topK;
  int64_t ffn = config.expertIntermediateSize;
  Value flat = tensor::CollapseShapeOp::create(
      b, floatTensor({numTokens, hiddenSize}), hidden,
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});

  Value routerWeight = parameter(block + ".gate.weight", {experts, hiddenSize});
  auto logitsType = floatTensor({numTokens, experts});
  Value logits =
      moe::RouterOp::create(b, logitsType, flat, routerWeight, Value());
  // The expanded form; moe-fuse-router folds it into the gate.
  Value gateInput = logits;
  if (config.gateNormLambda)
    gateInput = moe::GateNormOp::create(
        b, logitsType, logits, b.getF64FloatAttr(*config.gateNormLambda),
        b.getF64FloatAttr(kGateNormEps));
  // DeepSeek-V3's balancing bias starts at 0; moe-expert-bias moves it.
  Value bias =
      config.expertBias
          ? global(block + "." + std::string(moert::kExpertBiasName), {experts},
                   moe::InitKind::constant, 0.0, Holds::State)
          : Value();
  auto gate = moe::GateOp::create(
      b, logitsType, floatTensor({numTokens, topK}),
      indexTensor({numTokens, topK}), gateInput, bias,
      static_cast<uint64_t>(topK), config.scoring,
      /*norm_lambda=*/FloatAttr(), APFloat(kGateNormEps), config.renormalize,
      APFloat(config.routedScale), static_cast<uint64_t>(config.routerGroups),
      static_cast<uint64_t>(config.routerGroupTopK),
      static_cast<uint64_t>(config.routerGroupScoreTop));

  int64_t capacity = config.capacityFactor
                         ? moe::expertCapacity(*config.capacityFactor,
                                               numTokens, topK, experts)
                         : numTokens;
  auto dispatch = moe::DispatchOp::create(
      b, floatTensor({experts, capacity, hiddenSize}),
      indexTensor({numTokens, topK}), RankedTensorType::get({}, b.getI64Type()),
      flat, gate.getIndices(),
      config.dropByProbability ? gate.getWeights() : Value(),
      config.capacityFactor ? b.getF64FloatAttr(*config.capacityFactor)
                            : FloatAttr());

  Value w1 = parameter(block + ".experts.w1", {experts, ffn, hiddenSize});
  Value w3 = parameter(block + ".experts.w3", {experts, ffn, hiddenSize});
  Value w2 = parameter(block + ".experts.w2", {experts, hiddenSize, ffn});
  auto expertFfn =
      moe::ExpertFfnOp::create(b, dispatch.getBuffer().getType(),
                               floatTensor({experts, 2, capacity, ffn}),
                               dispatch.getBuffer(), w1, w3, w2);
  Value expertOut = expertFfn.getResult();
  Value combined =
      moe::CombineOp::create(b, flat.getType(), expertOut, gate.getWeights(),
                             gate.getIndices(), dispatch.getSlots());

  if (terms) {
    auto metric = [&](const char *name, Value value) {
      terms->metrics.push_back({block + "." + name, value});
    };
    if (config.pooledAuxLoss) {
      terms->gateProbs.push_back(gate.getProbs());
      terms->gateIndices.push_back(gate.getIndices());
    } else {
      Value aux = moe::AuxLossOp::create(b, floatTensor({}), config.auxLossKind,
                                         gate.getProbs(), gate.getIndices());
      // Coefficients are globals, so that moe-adaptive-aux can make them
      // training state, which checkpoints carry; a fixed one is a constant
      // of the config (moe::configConstantGlobals), which a resumed run
      // takes anew.
      Value auxCoeff = global(
          block + "." + std::string(moert::kAuxLossCoeffName), {},
          moe::InitKind::constant, config.auxLossCoeff, Holds::ConfigConstant);
      terms->lossTerms.push_back(
          moe::MulOp::create(b, auxCoeff.getType(), auxCoeff, aux));
      metric("aux_loss", aux);
      metric("aux_loss_coeff", auxCoeff);
    }
    Value zLoss = moe::ZLossOp::create(b, floatTensor({}), logits);
    if (config.zLossCoeff > 0) {
      Value zCoeff = global(block + "." + std::string(moert::kZLossCoeffName),
                            {}, moe::InitKind::constant, config.zLossCoeff,
                            Holds::ConfigConstant);
      terms->lossTerms.push_back(
          moe::MulOp::create(b, zCoeff.getType(), zCoeff, zLoss));
    }
    metric("z_loss", zLoss);
    metric("dropped", dispatch.getDropped());
    if (experts >= 3) {
      auto scalar = floatTensor({});
      auto routing = moe::RoutingMetricsOp::create(
          b, scalar, scalar, scalar,
          RankedTensorType::get({experts}, b.getI64Type()), gate.getProbs(),
          gate.getIndices(), dispatch.getSlots());
      metric("drop_rate", routing.getDropRate());
      metric("max1_max2", routing.getMax1Max2());
      metric("max2_max3", routing.getMax2Max3());
      metric("expert_load", routing.getLoad());
    }
  }
  // As transformers adds them: the routed experts' output, then the shared
  // one's.
  if (config.sharedExpertIntermediateSize) {
    Value shared = sharedExpert(flat, prefix);
    setLocation(block);
    combined = moe::AddOp::create(b, flat.getType(), combined, shared);
  }
  return tensor::ExpandShapeOp::create(
      b, hidden.getType(), combined,
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});
}

Value ModelBuilder::buildLogits(Value inputIds, TrainingTerms *terms) {
  int64_t batch = config.batchSize, seq = config.seqLen;
  setLocation("model.embed_tokens");
  Value table = parameter(std::string(moert::kTokenEmbeddingGlobal),
                          {config.vocabSize, config.hiddenSize});
  Value hidden = scaled(
      moe::EmbeddingOp::create(
          b, floatTensor({batch, seq, config.hiddenSize}), table, inputIds,
          config.padTokenId ? b.getI64IntegerAttr(*config.padTokenId)
                            : IntegerAttr()),
      config.embeddingMultiplier);

  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string prefix = llvm::formatv("model.layers.{0}", layer).str();
    hidden = inLayer(layer, [&] {
      auto norm = [&](Value value, const char *name) -> Value {
        setLocation(prefix);
        return moe::RmsNormOp::create(
            b, value.getType(), value,
            normWeight(prefix + "." + name + ".weight", config.hiddenSize),
            b.getF64FloatAttr(config.rmsNormEps));
      };
      // A sublayer's output joins the residual stream: pre-norm models
      // normalize its input (input_layernorm, post_attention_layernorm),
      // OLMo 2's its output (post_attention_layernorm,
      // post_feedforward_layernorm).
      auto residual = [&](Value stream, Value output,
                          const char *postNorm) -> Value {
        if (config.postNorms)
          output = norm(output, postNorm);
        return moe::AddOp::create(b, stream.getType(), stream,
                                  scaled(output, config.residualMultiplier));
      };
      Value attended = residual(
          hidden,
          attention(config.postNorms ? hidden : norm(hidden, "input_layernorm"),
                    prefix, layer),
          "post_attention_layernorm");
      Value ffnInput = config.postNorms
                           ? attended
                           : norm(attended, "post_attention_layernorm");
      Value ffnOut =
          config.isMoeLayer(layer)
              ? moeBlock(ffnInput, prefix, terms)
              : mlp(ffnInput, prefix + ".mlp", config.intermediateSize);
      return residual(attended, ffnOut, "post_feedforward_layernorm");
    });
  }

  setLocation("model.norm");
  hidden =
      moe::RmsNormOp::create(b, hidden.getType(), hidden,
                             normWeight("model.norm.weight", config.hiddenSize),
                             b.getF64FloatAttr(config.rmsNormEps));
  setLocation("lm_head");
  Value head =
      config.tieWordEmbeddings
          ? table
          : parameter("lm_head.weight", {config.vocabSize, config.hiddenSize});
  return scaled(
      moe::LinearOp::create(b, floatTensor({batch, seq, config.vocabSize}),
                            hidden, head, Value()),
      1 / config.logitsScaling);
}

void ModelBuilder::addPooledAuxLoss(TrainingTerms &terms) {
  setLocation("model");
  Value aux = moe::PooledAuxLossOp::create(b, floatTensor({}), terms.gateProbs,
                                           terms.gateIndices);
  Value coeff = global("model." + std::string(moert::kAuxLossCoeffName), {},
                       moe::InitKind::constant, config.auxLossCoeff,
                       Holds::ConfigConstant);
  terms.lossTerms.push_back(moe::MulOp::create(b, coeff.getType(), coeff, aux));
  terms.metrics.push_back({"aux_loss", aux});
  terms.metrics.push_back({"aux_loss_coeff", coeff});
}

void ModelBuilder::buildForward() {
  RankedTensorType idsType = indexTensor({config.batchSize, config.seqLen});
  b.setInsertionPointToEnd(module.getBody());
  setLocation("model");
  auto func = func::FuncOp::create(
      b, "forward", b.getFunctionType({idsType, idsType}, {floatTensor({})}));
  firstFunction = func;
  func.setArgAttr(0, moe::kInputAttrName, b.getStringAttr("input_ids"));
  func.setArgAttr(1, moe::kInputAttrName, b.getStringAttr("labels"));
  Block *body = func.addEntryBlock();
  b.setInsertionPointToStart(body);

  TrainingTerms terms;
  Value logits = buildLogits(func.getArgument(0), &terms);
  if (config.isMoe() && config.pooledAuxLoss)
    addPooledAuxLoss(terms);
  // Labels follow transformers' convention: -100 masks a position out of
  // the mean.
  Value labels = func.getArgument(1);
  IntegerAttr ignoreIndex = b.getI64IntegerAttr(kIgnoreIndex);
  Value counted =
      moe::CountTargetsOp::create(b, floatTensor({}), labels, ignoreIndex);
  Value crossEntropy = moe::CrossEntropyOp::create(
      b, floatTensor({}), logits, labels, counted, ignoreIndex);
  Value loss = crossEntropy;
  for (Value term : terms.lossTerms)
    loss = moe::AddOp::create(b, loss.getType(), loss, term);
  SmallVector<Value> results = {loss};
  SmallVector<std::string> names = {"loss"};
  // The objective's cross-entropy alone, Megatron-LM's "lm loss": what
  // validation reports, comparable across aux-loss settings.
  if (!terms.lossTerms.empty()) {
    results.push_back(crossEntropy);
    names.push_back(std::string(moert::kLanguageModelLoss));
  }
  for (auto &[name, value] : terms.metrics) {
    results.push_back(value);
    names.push_back(name);
  }
  func::ReturnOp::create(b, results);
  func.setType(b.getFunctionType(body->getArgumentTypes(),
                                 ValueRange(results).getTypes()));
  moe::setOutputNames(func, names);
}

void ModelBuilder::buildLogitsFunction() {
  RankedTensorType idsType = indexTensor({config.batchSize, config.seqLen});
  RankedTensorType logitsType =
      floatTensor({config.batchSize, config.seqLen, config.vocabSize});
  b.setInsertionPointToEnd(module.getBody());
  setLocation("model");
  auto func = func::FuncOp::create(b, "logits",
                                   b.getFunctionType({idsType}, {logitsType}));
  func.setArgAttr(0, moe::kInputAttrName, b.getStringAttr("input_ids"));
  func.setResultAttr(0, moe::kOutputAttrName, b.getStringAttr("logits"));
  b.setInsertionPointToStart(func.addEntryBlock());
  func::ReturnOp::create(b, buildLogits(func.getArgument(0), nullptr));
}

void ModelBuilder::buildExpertSimilarityFunction() {
  b.setInsertionPointToEnd(module.getBody());
  setLocation("model");
  auto func =
      func::FuncOp::create(b, "expert_similarity", b.getFunctionType({}, {}));
  b.setInsertionPointToStart(func.addEntryBlock());
  SmallVector<Value> results;
  SmallVector<std::string> names;
  int64_t experts = config.numExperts, ffn = config.expertIntermediateSize;
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    if (!config.isMoeLayer(layer))
      continue;
    std::string block =
        llvm::formatv("model.layers.{0}.block_sparse_moe", layer).str();
    setLocation(block);
    results.push_back(inLayer(layer, [&] {
      Value w1 =
          parameter(block + ".experts.w1", {experts, ffn, config.hiddenSize});
      Value w3 =
          parameter(block + ".experts.w3", {experts, ffn, config.hiddenSize});
      Value w2 =
          parameter(block + ".experts.w2", {experts, config.hiddenSize, ffn});
      return moe::ExpertSimilarityOp::create(b, floatTensor({}), w1, w3, w2)
          .getResult();
    }));
    names.push_back(block + ".expert_similarity");
  }
  func::ReturnOp::create(b, results);
  func.setType(b.getFunctionType({}, ValueRange(results).getTypes()));
  moe::setOutputNames(func, names);
}

OwningOpRef<ModuleOp> ModelBuilder::build() {
  OwningOpRef<ModuleOp> owned = ModuleOp::create(b);
  module = *owned;
  buildForward();
  buildLogitsFunction();
  if (config.isMoe() && config.numExperts >= 2)
    buildExpertSimilarityFunction();
  return owned;
}

} // namespace

OwningOpRef<ModuleOp> moe::buildModel(MLIRContext &context,
                                      const ModelConfig &config,
                                      Type elementType) {
  return ModelBuilder(context, config, elementType).build();
}

llvm::Expected<OwningOpRef<ModuleOp>>
moe::importModelConfig(MLIRContext &context, StringRef jsonText,
                       StringRef fileName, const ImportOptions &options) {
  llvm::Expected<ModelConfig> config = parseModelConfig(jsonText, fileName);
  if (!config)
    return config.takeError();
  if ((options.batchSize && *options.batchSize <= 0) ||
      (options.seqLen && *options.seqLen <= 0))
    return llvm::createStringError(
        llvm::formatv("the batch size and sequence length must be positive, "
                      "got {0} and {1}",
                      options.batchSize.value_or(config->batchSize),
                      options.seqLen.value_or(config->seqLen))
            .str());
  if (options.batchSize)
    config->batchSize = *options.batchSize;
  if (options.seqLen) {
    if (*options.seqLen > config->maxPositions)
      return llvm::createStringError(
          llvm::formatv("--seq-len {0} exceeds max_position_embeddings {1}",
                        *options.seqLen, config->maxPositions)
              .str());
    config->seqLen = *options.seqLen;
  }
  // Before the sizes' check: they say what model it checks (a window the
  // config class gave).
  if (options.printWarnings)
    for (const std::string &warning : config->warnings)
      llvm::WithColor::warning() << fileName << ": " << warning << "\n";
  if (llvm::Error error = checkModelSizes(*config, fileName))
    return std::move(error);
  context.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> module =
      buildModel(context, *config, options.elementType);
  // Compiled models and their checkpoints carry the config they came from,
  // with the step's shape they were built for.
  std::string recorded = jsonText.trim().str();
  if (options.batchSize || options.seqLen) {
    nlohmann::json object = nlohmann::json::parse(recorded);
    object["moe_batch_size"] = config->batchSize;
    object["moe_seq_len"] = config->seqLen;
    recorded = object.dump(2);
  }
  (*module)->setAttr(kConfigAttrName, StringAttr::get(&context, recorded));
  if (failed(verify(*module)))
    return llvm::createStringError(
        ("the model built from " + fileName + " does not verify").str());
  return std::move(module);
}
