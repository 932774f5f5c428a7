//===- TransformersMismatches.h - why no family fits ------------*- C++ -*-===//
//
// Internal to lib/Frontend: the messages of transformersModelOf that name
// what keeps a model from the families that come closest.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_FRONTEND_TRANSFORMERSMISMATCHES_H
#define MOE_LIB_FRONTEND_TRANSFORMERSMISMATCHES_H

#include "moe/Frontend/ModelConfig.h"

#include <string>

namespace mlir::moe::detail {

/// What keeps `config`, which routes by sigmoid scores or a bias (or has
/// DeepSeek's scale, groups or ungated shared experts, or rotates part of
/// each head or turns RoPE's pairs), from Dots1 and GLM-4-MoE (DeepSeek-V3's
/// MoE layers), from HY V3, from MiniMax-M2 and from ERNIE 4.5 MoE.
std::string biasedRoutingMismatch(const ModelConfig &config, bool ungatedShared,
                                  bool denseFirst);
/// What keeps `config`, which has ungated shared experts beside softmax
/// scores chosen without a bias, unscaled, among all experts, from Granite
/// MoE Shared and from HunYuan MoE V1.
std::string softmaxSharedMismatch(const ModelConfig &config);
/// What keeps `config`, whose attention is multi-head latent attention,
/// from DeepSeek-V3 and GLM-4-MoE-Lite, and from DeepSeek-V2.
std::string latentAttentionMismatch(const ModelConfig &config,
                                    bool ungatedShared, bool denseFirst);

} // namespace mlir::moe::detail

#endif // MOE_LIB_FRONTEND_TRANSFORMERSMISMATCHES_H
