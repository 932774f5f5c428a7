//===- TrainingSettings.h - the training settings a module records -*- C++
//-*-===//
//
// The passes that decide how a model trains record their options on the
// module (kTrainingAttrName), so that a compiled model, and each checkpoint
// it writes, says what it was trained with: a run resumed by a binary
// compiled with other settings (a new learning rate) lists what changed.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_TRAININGSETTINGS_H
#define MOE_TRANSFORMS_TRAININGSETTINGS_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {

/// `pass`'s options as "key=value ...", every option with its value.
std::string passOptionsText(Pass &pass);

/// Records `pass`'s options ("key=value ...", every option with its value)
/// under its name in `module`'s kTrainingAttrName dictionary.
void recordTrainingSettings(Pass &pass, ModuleOp module);

/// Fails, naming both, where `module` records other options of `pass`: a
/// pass that transformed it once cannot transform it again another way.
LogicalResult requireSameSettingsAsBefore(Pass &pass, ModuleOp module);

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_TRAININGSETTINGS_H
