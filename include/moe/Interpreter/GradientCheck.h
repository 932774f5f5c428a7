//===- GradientCheck.h - finite-difference checks of moe-autodiff -*- C++
//-*-===//
//
// Differentiates a function with moe-autodiff (as a general vector-Jacobian
// product with a random cotangent r) and compares the gradient of every
// trainable global with central finite differences of <r, f(globals)>,
// evaluated by the reference interpreter. Meant for f64 models: in f32 the
// differences drown in rounding.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_GRADIENTCHECK_H
#define MOE_INTERPRETER_GRADIENTCHECK_H

#include "moe/Interpreter/Evaluator.h"

namespace mlir::moe {

struct GradientCheckOptions {
  std::string function = "forward";
  uint64_t seed = 0;            // cotangent and sampled elements
  int64_t samplesPerTensor = 4; // every element when the tensor is smaller
  double step = 1e-4;           // central-difference step
};

struct TensorGradientCheck {
  std::string global;
  int64_t checkedElements = 0;
  /// ||autodiff - finite differences|| / max(||autodiff||, ||fd||) over the
  /// checked elements (0 when both are zero, infinite when either holds a
  /// NaN or an infinity).
  double relativeError = 0;
};

/// The relative error from the squared norms of the difference and of
/// both gradients: a non-finite gradient is an infinite error, never 0.
double gradientRelativeError(double differenceSq, double analyticSq,
                             double numericSq);

/// Adds the gradient function of `options.function` to `module`, as
/// @<function>_vjp with the output's cotangent as last argument.
LogicalResult addGradientFunction(ModuleOp module,
                                  const GradientCheckOptions &options);

/// Checks the gradient function, adding it first when `module` has none.
/// The evaluator must hold every global; the arguments are those of the
/// function. Failures are reported as diagnostics.
///
/// With a communicator, the evaluator is one rank of an SPMD group and
/// every rank calls this in step (the gradient function must exist: add it
/// once, before the ranks start). Each rank has its own cotangent, the
/// objective is the sum over ranks, every global is replicated (perturbed
/// alike on every rank) and its gradient is the sum of the ranks'.
FailureOr<std::vector<TensorGradientCheck>>
checkGradients(ModuleOp module, Evaluator &evaluator,
               const std::vector<ref::Tensor> &arguments,
               const GradientCheckOptions &options,
               ref::Communicator *communicator = nullptr);

} // namespace mlir::moe

#endif // MOE_INTERPRETER_GRADIENTCHECK_H
