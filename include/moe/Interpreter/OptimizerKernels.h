//===- OptimizerKernels.h - reference optimizer ops -------------*- C++ -*-===//
//
// The semantics of moe.lr_schedule, moe.global_norm and moe.adamw (see
// MoeOptimizerOps.td), spelled out for the interpreter.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_OPTIMIZERKERNELS_H
#define MOE_INTERPRETER_OPTIMIZERKERNELS_H

#include "moe/Interpreter/Tensor.h"
#include "moert/KernelTypes.h"

namespace mlir::moe::ref {

struct LrSchedule {
  double maxLr, minLr;
  int64_t warmupSteps, decaySteps;
  moert::LrDecay decay;
  /// The learning rate at 0-based optimizer step `step`.
  double at(int64_t step) const;
};

/// The scalar learning rate of `schedule` at `step` (an i64 scalar).
Tensor lrSchedule(const Tensor &step, const LrSchedule &schedule, DType dtype);

/// sqrt of the sum of squares of every element of every tensor.
Tensor globalNorm(const std::vector<const Tensor *> &tensors, DType dtype);

struct AdamWConfig {
  double beta1, beta2, eps, weightDecay, maxGradNorm;
};

struct AdamWResult {
  Tensor param, expAvg, expAvgSq;
};

AdamWResult adamw(const Tensor &param, const Tensor &grad, const Tensor &expAvg,
                  const Tensor &expAvgSq, const Tensor &lr,
                  const Tensor &gradNorm, const Tensor &step,
                  const AdamWConfig &config);

} // namespace mlir::moe::ref

#endif // MOE_INTERPRETER_OPTIMIZERKERNELS_H
