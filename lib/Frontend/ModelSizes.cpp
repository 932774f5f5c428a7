//===- ModelSizes.cpp - the sizes a model's tensors may have -------------===//
//
// A config's model is refused by name where a tensor of it would be too
// large for the sizes the kernels index with, before any memory is asked
// for.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelConfig.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

namespace {

/// Elements of the largest tensor a model may have (4 TiB of f32).
constexpr int64_t kMaxTensorElements = int64_t(1) << 40;

} // namespace

llvm::Error mlir::moe::checkModelSizes(const ModelConfig &config,
                                       llvm::StringRef fileName) {
  auto tooLarge =
      [&](llvm::StringRef what,
          llvm::ArrayRef<int64_t> shape) -> std::optional<std::string> {
    int64_t elements = 1;
    bool overflow = false;
    for (int64_t dim : shape)
      overflow |= __builtin_mul_overflow(elements, dim, &elements);
    if (!overflow && elements <= kMaxTensorElements)
      return std::nullopt;
    std::string dims;
    for (int64_t dim : shape)
      dims += (dims.empty() ? "" : ", ") + std::to_string(dim);
    return llvm::formatv("{0}: the {1} would be [{2}], more than the 2^40 "
                         "elements a tensor may have",
                         fileName, what, dims)
        .str();
  };
  int64_t tokens = config.batchSize * config.seqLen;
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {"embedding table", {config.vocabSize, config.hiddenSize}},
      {"logits", {config.batchSize, config.seqLen, config.vocabSize}},
      {"attention scores",
       {config.batchSize, config.numHeads, config.seqLen, config.seqLen}},
      // With gated attention, each head's query and its gate.
      {"query heads",
       {config.batchSize, config.seqLen, config.numHeads,
        (config.gatedAttention ? 2 : 1) * config.headDim()}},
      {"query projection weight",
       {config.numHeads, (config.gatedAttention ? 2 : 1) * config.headDim(),
        config.hiddenSize}},
      {"MLP weight", {config.intermediateSize, config.hiddenSize}},
      {"shared expert weight",
       {config.sharedExpertIntermediateSize, config.hiddenSize}},
      {"layer activations",
       {config.batchSize, config.seqLen,
        std::max({config.hiddenSize, config.intermediateSize,
                  config.sharedExpertIntermediateSize})}}};
  if (const std::optional<LatentAttention> &mla = config.latentAttention) {
    tensors.push_back(
        {"latent key-value projection weight",
         {config.numHeads, mla->nopeHeadDim + mla->valueHeadDim, mla->kvRank}});
    tensors.push_back({"value heads",
                       {config.batchSize, config.seqLen, config.numHeads,
                        mla->valueHeadDim}});
    tensors.push_back(
        {"output projection weight",
         {config.hiddenSize, config.numHeads, mla->valueHeadDim}});
    if (mla->queryRank)
      tensors.push_back({"latent query projection weight",
                         {config.numHeads, config.headDim(), *mla->queryRank}});
  }
  if (config.isMoe()) {
    tensors.push_back({"stacked expert weights",
                       {config.numExperts, config.expertIntermediateSize,
                        config.hiddenSize}});
    // Rows per expert: the capacity, or every token when dropless.
    double rows = config.capacityFactor
                      ? std::ceil(*config.capacityFactor * tokens *
                                  config.topK / config.numExperts)
                      : tokens;
    if (rows > mlir::moe::kMaxDimension && config.capacityFactor)
      return llvm::createStringError(
          llvm::formatv(
              "{0}: 'moe_capacity_factor' ({1:e}) gives {2:e} rows per "
              "expert, more than 2^31",
              fileName, *config.capacityFactor, rows)
              .str());
    if (rows > mlir::moe::kMaxDimension)
      return llvm::createStringError(
          llvm::formatv("{0}: the batch ({1}) x sequence ({2}) of a dropless "
                        "layer gives {3} rows per expert (every token may "
                        "choose one expert), more than 2^31",
                        fileName, config.batchSize, config.seqLen, tokens)
              .str());
    tensors.push_back(
        {"expert buffers",
         {config.numExperts, static_cast<int64_t>(rows),
          std::max(config.hiddenSize, config.expertIntermediateSize)}});
  }
  for (const auto &[what, shape] : tensors)
    if (std::optional<std::string> error = tooLarge(what, shape))
      return llvm::createStringError(*error);
  return llvm::Error::success();
}
