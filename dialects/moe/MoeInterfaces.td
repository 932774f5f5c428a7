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

#endif // MOE_INTERFACES_TD
