//===- EvaluatorUtils.h - shared by the evaluator's files -------*- C++ -*-===//
//
// Tensor types and constants as the interpreter's tensors, for the
// evaluator of ops (Evaluator.cpp) and of globals (EvaluatorGlobals.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_INTERPRETER_EVALUATORUTILS_H
#define MOE_LIB_INTERPRETER_EVALUATORUTILS_H

#include "moe/Interpreter/Evaluator.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"

#include <vector>

namespace mlir::moe::evaluator {

using ref::Tensor;

inline std::vector<int64_t> shapeOf(RankedTensorType type) {
  return {type.getShape().begin(), type.getShape().end()};
}

/// `type` when the interpreter evaluates it (a static tensor of a dtype it
/// knows); an error at `op` otherwise.
inline FailureOr<RankedTensorType> staticTensorType(Operation *op, Type type) {
  auto tensorType = dyn_cast<RankedTensorType>(type);
  if (!tensorType || !tensorType.hasStaticShape() ||
      failed(moe::dtypeOf(tensorType.getElementType())))
    return op->emitError() << "moe-run evaluates static tensors of f32, f64, "
                              "i32 or i64 only, got "
                           << type;
  return tensorType;
}

/// An error at `op`, which `what` names, that needs the ranks of `grid`'s
/// SPMD group where moe-run runs one rank.
inline InFlightDiagnostic missingGroupError(Operation *op, const Twine &what,
                                            ArrayRef<int64_t> grid) {
  int64_t ranks = ShapedType::getNumElements(grid);
  return op->emitError() << what << " needs the " << ranks
                         << " ranks of its SPMD group (moe-run --ranks "
                         << ranks << ")";
}

inline Tensor tensorFromAttr(RankedTensorType type, DenseElementsAttr attr) {
  Tensor tensor =
      Tensor::zeros(*moe::dtypeOf(type.getElementType()), shapeOf(type));
  if (isa<FloatType>(type.getElementType())) {
    llvm::transform(attr.getValues<APFloat>(), tensor.data.begin(),
                    [](const APFloat &v) { return v.convertToDouble(); });
  } else {
    llvm::transform(attr.getValues<APInt>(), tensor.data.begin(),
                    [](const APInt &v) { return double(v.getSExtValue()); });
  }
  return tensor;
}

} // namespace mlir::moe::evaluator

#endif // MOE_LIB_INTERPRETER_EVALUATORUTILS_H
