//===- ModelBuilder.h - emit a model as moe-dialect IR ----------*- C++ -*-===//

#ifndef MOE_FRONTEND_MODELBUILDER_H
#define MOE_FRONTEND_MODELBUILDER_H

#include "moe/Frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>

namespace mlir::moe {

/// Emits the model of `config` with `elementType` (f32 or f64) values: an
/// ml_program.global per parameter (Hugging Face names, #moe.init
/// initializers), one per layer for its auxiliary-loss coefficient,
/// `func.func @forward(input_ids, labels) -> loss` (the loss includes each
/// MoE layer's coefficient times its auxiliary loss) and
/// `func.func @logits(input_ids) -> logits` for evaluation and sampling.
mlir::OwningOpRef<mlir::ModuleOp> buildModel(mlir::MLIRContext &context,
                                             const ModelConfig &config,
                                             mlir::Type elementType);

struct ImportOptions {
  Type elementType;                 // f32 or f64
  std::optional<int64_t> batchSize; // overrides moe_batch_size (> 0)
  std::optional<int64_t> seqLen;    // overrides moe_seq_len (> 0)
  /// Whether to print the config's warnings (a tool that imports one config
  /// several times says them once).
  bool printWarnings = true;
};

/// Parses the config.json text of `fileName`, applies the overrides, builds
/// the model, records the config text on the module (moe.config) and
/// verifies it. Errors name the file and the key or option at fault.
llvm::Expected<OwningOpRef<ModuleOp>>
importModelConfig(MLIRContext &context, llvm::StringRef jsonText,
                  llvm::StringRef fileName, const ImportOptions &options);

} // namespace mlir::moe

#endif // MOE_FRONTEND_MODELBUILDER_H
