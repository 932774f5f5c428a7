//===- InitAllDialects.h - dialects every moe tool loads --------*- C++ -*-===//

#ifndef MOE_INITALLDIALECTS_H
#define MOE_INITALLDIALECTS_H

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"

namespace mlir::moe {

/// The moe dialect and the upstream dialects a model is written with
/// (shard: the collectives of SPMD programs).
inline void registerAllDialects(DialectRegistry &registry) {
  registry.insert<MoeDialect, arith::ArithDialect, func::FuncDialect,
                  ml_program::MLProgramDialect, math::MathDialect,
                  shard::ShardDialect, tensor::TensorDialect>();
  registerExternalModels(registry);
}

} // namespace mlir::moe

#endif // MOE_INITALLDIALECTS_H
