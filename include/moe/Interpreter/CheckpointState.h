//===- CheckpointState.h - moe-run's resume of a checkpoint -----*- C++ -*-===//
//
// moe-run --resume reads a training binary's checkpoint as it reads any
// weights (Evaluator::loadGlobals), and holds it to what the binary's own
// resume (moert::loadCheckpoint) requires of the state beyond the weights.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_CHECKPOINTSTATE_H
#define MOE_INTERPRETER_CHECKPOINTSTATE_H

#include "moert/Checkpoint.h"
#include "moert/WeightSource.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::moe {

/// Fails, naming the tensor, unless checkpoint `source` (whose metadata says
/// `run`) holds tensors of `module`'s globals alone, none transient, and
/// every global of `module` that a binary's checkpoint holds:
/// all but the transient ones and the config's constants, where one that
/// the checkpoint's model held constant may be missing (it starts from its
/// initializer); and unless its optimizer step count agrees with `run`.
LogicalResult requireCheckpointState(ModuleOp module,
                                     const moert::WeightSource &source,
                                     const moert::CheckpointRun &run);

/// Whether `module`'s aux-loss coefficients are state that its steps move,
/// as moert::adaptiveAuxCoefficients says of a compiled model.
bool adaptiveAuxCoefficients(ModuleOp module);

/// moert::stateOriginChanges of resuming `module` from checkpoint `source`.
std::string checkpointStateChanges(ModuleOp module,
                                   const moert::WeightSource &source,
                                   const moert::CheckpointRun &run);

} // namespace mlir::moe

#endif // MOE_INTERPRETER_CHECKPOINTSTATE_H
