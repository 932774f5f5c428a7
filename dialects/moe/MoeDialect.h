//===- MoeDialect.h - the moe dialect ---------------------------*- C++ -*-===//
//
// Declarations of the moe dialect, its enums, attributes and ops.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MOEDIALECT_H
#define MOE_MOEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "moe/MoeDialect.h.inc"
#include "moe/MoeEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moe/MoeAttrs.h.inc"

#include "moe/MoeInterfaces.h.inc"

#define GET_OP_CLASSES
#include "moe/MoeOps.h.inc"

namespace mlir::moe {

/// Name of the discardable attribute on an ml_program.global that holds its
/// #moe.init initializer.
inline constexpr llvm::StringLiteral kInitAttrName = "moe.init";

/// String attributes naming a function's arguments and results, by which
/// tools bind inputs and outputs (e.g. "input_ids", "labels", "loss").
inline constexpr llvm::StringLiteral kInputAttrName = "moe.input";
inline constexpr llvm::StringLiteral kOutputAttrName = "moe.output";

/// Unit attribute on an ml_program.global that autodiff and the optimizer
/// treat as a parameter. Globals without it are training state (e.g. the
/// per-layer auxiliary-loss coefficients).
inline constexpr llvm::StringLiteral kTrainableAttrName = "moe.trainable";

/// The config.json text a module was imported from (on the module), which
/// compiled models and their checkpoints carry.
inline constexpr llvm::StringLiteral kConfigAttrName = "moe.config";

/// The memory plan of moe-plan-memory: per-result arena offsets (-1 where a
/// result has no arena buffer) on ops, the arena size on functions, and a
/// unit marker on ops that write a global's storage in place.
inline constexpr llvm::StringLiteral kArenaOffsetsAttrName =
    "moe.arena_offsets";
inline constexpr llvm::StringLiteral kArenaBytesAttrName = "moe.arena_bytes";
inline constexpr llvm::StringLiteral kInPlaceAttrName = "moe.in_place";

/// Rows per expert buffer: ceil(capacityFactor * tokens * topK / numExperts).
/// The product is rounded first so that, e.g., 1.1 * 100 gives 110, not 111.
int64_t expertCapacity(double capacityFactor, int64_t tokens, int64_t topK,
                       int64_t numExperts);

/// Attaches DifferentiableOpInterface to the upstream ops a model uses
/// (tensor.expand_shape, tensor.collapse_shape).
void registerDifferentiableExternalModels(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_MOEDIALECT_H
