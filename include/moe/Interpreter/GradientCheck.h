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
  /// The root-mean-square gradient below which a tensor's error is taken
  /// relative to this instead: a central difference of a gradient that is
  /// exactly 0 is rounding noise (about 1e-11 in f64), against which the
  /// autodiff value (1e-20, or 0) is an error of 1 relative to either; a
  /// gradient wrong by 1e-9 in every checked element still fails the
  /// default tolerance.
  double gradientFloor = 1e-4;
};

struct TensorGradientCheck {
  std::string global;
  int64_t checkedElements = 0;
  /// ||autodiff - finite differences|| / max(||autodiff||, ||fd||, floor)
  /// over the checked elements, floor being the gradient floor's norm over
  /// as many elements (infinite when either holds a NaN or an infinity).
  double relativeError = 0;
};

/// The relative error from the squared norms of the difference, of both
/// gradients and of the floor: a non-finite gradient is an infinite error,
/// never 0.
double gradientRelativeError(double differenceSq, double analyticSq,
                             double numericSq, double floorSq);

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
