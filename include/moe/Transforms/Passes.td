//===- Passes.td - moe passes ------------------------------*- tablegen -*-===//
//
// Every pass of the project, one file each under lib/Transforms.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_PASSES_TD
#define MOE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ModelStats : Pass<"moe-model-stats", "::mlir::ModuleOp"> {
  let summary = "Report parameter counts of a moe-dialect model";
  let description = [{
    Prints, for the module, the number of MoE layers, experts and top-k, the
    total number of trainable parameters (globals marked `moe.trainable`), the
    parameters held by experts, the parameters active per token (all but the
    experts' share, plus `top_k / experts` of it) and the training-state
    globals. The module is not changed.
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect",
                           "::mlir::ml_program::MLProgramDialect"];
}

#endif // MOE_TRANSFORMS_PASSES_TD
