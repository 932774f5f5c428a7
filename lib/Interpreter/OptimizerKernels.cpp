//===- OptimizerKernels.cpp - reference optimizer ops ---------------------===//

#include "moe/Interpreter/OptimizerKernels.h"
#include "moert/RowMath.h"

#include <algorithm>
#include <cmath>

using namespace mlir::moe::ref;

double mlir::moe::ref::LrSchedule::at(int64_t step) const {
  return moert::rows::learningRate(step, maxLr, minLr, warmupSteps, decaySteps,
                                   decay);
}

Tensor mlir::moe::ref::lrSchedule(const Tensor &step,
                                  const LrSchedule &schedule, DType dtype) {
  return Tensor::scalar(dtype, schedule.at(static_cast<int64_t>(step.data[0])));
}

Tensor mlir::moe::ref::globalNorm(const std::vector<const Tensor *> &tensors,
                                  DType dtype) {
  double sumOfSquares = 0;
  for (const Tensor *tensor : tensors)
    for (double value : tensor->data)
      sumOfSquares += value * value;
  return Tensor::scalar(dtype, std::sqrt(sumOfSquares));
}

AdamWResult mlir::moe::ref::adamw(const Tensor &param, const Tensor &grad,
                                  const Tensor &expAvg, const Tensor &expAvgSq,
                                  const Tensor &lr, const Tensor &gradNorm,
                                  const Tensor &step,
                                  const AdamWConfig &config) {
  double rate = lr.data[0];
  double clip =
      config.maxGradNorm > 0
          ? std::min(1.0, config.maxGradNorm / (gradNorm.data[0] + 1e-6))
          : 1.0;
  double t = step.data[0] + 1.0;
  double correction1 = 1.0 - std::pow(config.beta1, t);
  double correction2 = 1.0 - std::pow(config.beta2, t);
  AdamWResult result{param, expAvg, expAvgSq};
  for (int64_t i = 0; i < param.numel(); ++i) {
    double g = clip * grad.data[i];
    double m = config.beta1 * expAvg.data[i] + (1.0 - config.beta1) * g;
    double v = config.beta2 * expAvgSq.data[i] + (1.0 - config.beta2) * g * g;
    double p = param.data[i] * (1.0 - rate * config.weightDecay);
    result.param.data[i] = p - rate * (m / correction1) /
                                   (std::sqrt(v / correction2) + config.eps);
    result.expAvg.data[i] = m;
    result.expAvgSq.data[i] = v;
  }
  return result;
}
