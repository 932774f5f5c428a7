//===- MoeFusedOps.cpp - verifier of the fused elementwise op -------------===//

#include "VerifierUtils.h"
#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace mlir::moe;

LogicalResult FusedElementwiseOp::verify() {
  Type type = getResult().getType();
  for (auto [index, input] : llvm::enumerate(getInputs()))
    if (input.getType() != type)
      return emitOpError() << "input #" << index << " must have the result "
                           << "type " << type << ", got " << input.getType();
  Block &body = getBody().front();
  Type element = getElementTypeOrSelf(type);
  if (body.getNumArguments() != getInputs().size())
    return emitOpError() << "body must take one scalar per input ("
                         << getInputs().size() << "), got "
                         << body.getNumArguments();
  for (BlockArgument argument : body.getArguments())
    if (argument.getType() != element)
      return emitOpError() << "body argument #" << argument.getArgNumber()
                           << " must be " << element << ", got "
                           << argument.getType();
  for (Operation &op : body) {
    if (!isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp,
             arith::NegFOp, arith::ConstantOp, math::ExpOp, YieldOp>(op))
      return op.emitOpError()
             << "is not allowed in a moe.fused_elementwise body (allowed: "
                "arith.addf, subf, mulf, divf, negf, constant, math.exp)";
    // The generated loops compute one scalar of the result's type.
    for (Type resultType : op.getResultTypes())
      if (resultType != element)
        return op.emitOpError() << "in a moe.fused_elementwise body must give "
                                << element << ", got " << resultType;
  }
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield || yield.getValue().getType() != element)
    return emitOpError() << "body must end with moe.yield of " << element;
  return success();
}

unsigned FusedElementwiseOp::getInPlaceOperandIndex(unsigned) {
  // Each element of the first input is read before the same element of
  // the result is written.
  return 0;
}
