//===- MoeInterfaces.td - moe op interfaces ----------------*- tablegen -*-===//

#ifndef MOE_INTERFACES_TD
#define MOE_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Moe_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    An op that can build its vector-Jacobian product (VJP) as IR. The
    autodiff pass (moe-autodiff) walks a function backwards and asks each op
    for the gradients of its operands given the gradients of its results.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds, at the builder's insertion point, the gradient of each
        operand given `resultGrads`, one per result: a tensor of the result's
        type, or null for a result that is not differentiable (an integer
        result such as top-k indices). Appends one value per operand to
        `operandGrads`: its gradient, or null where the operand is not
        differentiable (ids, indices, slots) or gets no gradient.
      }],
      "::llvm::LogicalResult", "buildVjp",
      (ins "::mlir::OpBuilder &":$builder,
           "::llvm::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

def Moe_InPlaceOpInterface : OpInterface<"InPlaceOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    An op each of whose results may be written into the storage of one of
    its operands: the op reads every element of that operand before it
    writes the same element of the result, so result and operand may alias
    (AdamW's parameter and moments, a fused loop's first input, the step
    counter's increment). The
    memory planner (moe-plan-memory) decides whether they do; the op's
    kernel must work either way.
  }];
  let methods = [
    InterfaceMethod<[{
        The index of the operand whose storage result `resultIndex` may
        overwrite.
      }],
      "unsigned", "getInPlaceOperandIndex", (ins "unsigned":$resultIndex)>
  ];
}

def Moe_NarrowableResultOpInterface
    : OpInterface<"NarrowableResultOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    An op whose kernels can store a result computed in f32 as bf16, rounded
    to nearest even as `arith.truncf` rounds: the result may be typed bf16
    where the op's f32 program would narrow it right after. moe-narrow-results
    folds such an `arith.truncf` into the op, which saves the pass over
    memory that the f32 result and its conversion cost.
  }];
  let methods = [
    InterfaceMethod<[{
        Whether result `resultIndex` may be bf16 with the op's operands as
        they are: where the op computes it in f32, from f32 operands (or bf16
        ones it widens, `computesInF32`) or, for a GEMM, from bf16 operands
        it accumulates in f32.
      }],
      "bool", "isNarrowableResult", (ins "unsigned":$resultIndex)>
  ];
}

def Moe_WidenableOperandOpInterface
    : OpInterface<"WidenableOperandOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    An op whose kernels can read an operand stored as bf16, widening each
    element as `arith.extf` does, while they compute in f32: the operand may
    be typed bf16 where the op's f32 program would widen it right before.
    moe-widen-operands folds such an `arith.extf` into the op, which saves
    the pass over memory that the conversion and its f32 copy cost.
  }];
  let methods = [
    InterfaceMethod<[{
        Whether operand `operandIndex` may be bf16 where the op computes in
        f32.
      }],
      "bool", "isWidenableOperand", (ins "unsigned":$operandIndex)>
  ];
}

// Marks the ops that compute gradients (the vector-Jacobian products of
// forward ops), which the memory planner counts as backward memory.
def Moe_Backward : NativeOpTrait<"Backward"> {
  let cppNamespace = "::mlir::moe::OpTrait";
}

// Marks the ops of the optimizer's update (learning rate, gradient norm,
// AdamW): they read gradients but are not part of the backward.
def Moe_OptimizerStep : NativeOpTrait<"OptimizerStep"> {
  let cppNamespace = "::mlir::moe::OpTrait";
}

#endif // MOE_INTERFACES_TD
