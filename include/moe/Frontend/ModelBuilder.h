//===- ModelBuilder.h - emit a model as moe-dialect IR ----------*- C++ -*-===//

#ifndef MOE_FRONTEND_MODELBUILDER_H
#define MOE_FRONTEND_MODELBUILDER_H

#include "moe/Frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir::moe {

/// Emits the model of `config` with `elementType` (f32 or f64) values: an
/// ml_program.global per parameter (Hugging Face names, #moe.init
/// initializers), one per layer for its auxiliary-loss coefficient, and
/// `func.func @forward(input_ids, labels) -> loss`.
mlir::OwningOpRef<mlir::ModuleOp> buildModel(mlir::MLIRContext &context,
                                             const ModelConfig &config,
                                             mlir::Type elementType);

} // namespace mlir::moe

#endif // MOE_FRONTEND_MODELBUILDER_H
