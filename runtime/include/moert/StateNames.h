//===- StateNames.h - names of the training state ---------------*- C++ -*-===//
//
// moe-optimizer and moe-accumulate-gradients add these globals and
// functions beside the model's; checkpoints carry the optimizer's globals,
// readers of weights recognize them, and hosts call the functions. Hosts
// also look up the model's token embedding and its loss outputs.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_STATENAMES_H
#define MOERT_STATENAMES_H

#include <string_view>

namespace moert {

/// The token embedding ([vocab, hidden]), whose rows are the vocabulary
/// that data must stay within.
inline constexpr std::string_view kTokenEmbeddingGlobal =
    "model.embed_tokens.weight";
/// The output of a model's loss function that holds the cross-entropy
/// alone, beside its objective ("loss") where that adds aux-loss or z-loss
/// terms: what the binaries report as the loss and the validation loss.
inline constexpr std::string_view kLanguageModelLoss = "lm_loss";
/// The train step's outputs of the optimizer's state after its first
/// result (the loss): the gradient norm before clipping and the learning
/// rate of the step.
inline constexpr std::string_view kGradNormOutput = "grad_norm";
inline constexpr std::string_view kLearningRateOutput = "lr";
/// The last component of an aux-loss coefficient's name (each MoE layer's,
/// or the model's where the loss is pooled): a constant of the config, or
/// state that moe-adaptive-aux moves.
inline constexpr std::string_view kAuxLossCoeffName = "aux_loss_coeff";
inline bool isAuxLossCoeff(std::string_view global) {
  return global.substr(global.rfind('.') + 1) == kAuxLossCoeffName;
}
/// The same of each MoE layer's z-loss coefficient.
inline constexpr std::string_view kZLossCoeffName = "z_loss_coeff";
inline bool isLossCoeff(std::string_view global) {
  return isAuxLossCoeff(global) ||
         global.substr(global.rfind('.') + 1) == kZLossCoeffName;
}
/// The last components of a MoE layer's expert-selection bias
/// (DeepSeek-V3's auxiliary-loss-free balancing, transformers' name):
/// state that moe-expert-bias moves.
inline constexpr std::string_view kExpertBiasName =
    "gate.e_score_correction_bias";
inline bool isExpertBias(std::string_view global) {
  return global.size() > kExpertBiasName.size() &&
         global.substr(global.size() - kExpertBiasName.size()) ==
             kExpertBiasName &&
         global[global.size() - kExpertBiasName.size() - 1] == '.';
}
/// The optimizer's step count.
inline constexpr std::string_view kOptimizerStepGlobal = "optimizer.step";
/// Adam's moments of the trainable global NAME: NAME.exp_avg and
/// NAME.exp_avg_sq.
inline constexpr std::string_view kFirstMomentSuffix = ".exp_avg";
inline constexpr std::string_view kSecondMomentSuffix = ".exp_avg_sq";
/// The gradient accumulator of the trainable global NAME, the drop count
/// accumulator of the adaptive coefficient NAME and the load accumulator of
/// the expert bias NAME (transient globals).
inline constexpr std::string_view kGradientSumSuffix = ".grad_accum";
inline constexpr std::string_view kDropSumSuffix = ".dropped_accum";
inline constexpr std::string_view kLoadSumSuffix = ".load_accum";
/// The function a host calls on each micro-batch of a step but the last,
/// which goes to the train step.
inline constexpr std::string_view kMicroStepFunction = "train_micro_step";

} // namespace moert

#endif // MOERT_STATENAMES_H
