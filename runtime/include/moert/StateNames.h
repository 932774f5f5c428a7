//===- StateNames.h - names of the training state globals -------*- C++ -*-===//
//
// moe-optimizer adds these globals beside the weights; checkpoints carry
// them, and readers of weights recognize them.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_STATENAMES_H
#define MOERT_STATENAMES_H

#include <string_view>

namespace moert {

/// The optimizer's step count.
inline constexpr std::string_view kOptimizerStepGlobal = "optimizer.step";
/// Adam's moments of the trainable global NAME: NAME.exp_avg and
/// NAME.exp_avg_sq.
inline constexpr std::string_view kFirstMomentSuffix = ".exp_avg";
inline constexpr std::string_view kSecondMomentSuffix = ".exp_avg_sq";

} // namespace moert

#endif // MOERT_STATENAMES_H
