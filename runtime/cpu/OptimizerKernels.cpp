//===- OptimizerKernels.cpp - f32 CPU optimizer kernels -------------------===//

#include "moert/CpuKernels.h"

#include <algorithm>
#include <cmath>

float moert::cpu::lrSchedule(int64_t step, double maxLr, double minLr,
                             int64_t warmupSteps, int64_t decaySteps) {
  if (step < warmupSteps)
    return static_cast<float>(maxLr * static_cast<double>(step + 1) /
                              static_cast<double>(warmupSteps + 1));
  if (step > decaySteps)
    return static_cast<float>(minLr);
  double ratio = static_cast<double>(step - warmupSteps) /
                 static_cast<double>(decaySteps - warmupSteps);
  return static_cast<float>(minLr + 0.5 * (1.0 + std::cos(M_PI * ratio)) *
                                        (maxLr - minLr));
}

float moert::cpu::globalNorm(const float *const *tensors, const int64_t *sizes,
                             int64_t count) {
  // Per-tensor partial sums in double, combined in tensor order: the result
  // does not depend on the thread count.
  double total = 0;
  for (int64_t t = 0; t < count; ++t) {
    double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (int64_t i = 0; i < sizes[t]; ++i)
      sum += static_cast<double>(tensors[t][i]) * tensors[t][i];
    total += sum;
  }
  return static_cast<float>(std::sqrt(total));
}

void moert::cpu::adamw(const float *param, const float *grad,
                       const float *expAvg, const float *expAvgSq,
                       int64_t count, float lr, float gradNorm, int64_t step,
                       const AdamWConfig &config, float *newParam,
                       float *newExpAvg, float *newExpAvgSq) {
  // Scalars in double, the element loop in float so that it vectorizes:
  // the update is memory-bound over every parameter and both moments.
  double clip = config.maxGradNorm > 0
                    ? std::min(1.0, config.maxGradNorm / (gradNorm + 1e-6))
                    : 1.0;
  double t = static_cast<double>(step) + 1.0;
  double correction1 = 1.0 - std::pow(config.beta1, t);
  double correction2 = 1.0 - std::pow(config.beta2, t);
  const float scale = static_cast<float>(clip);
  const float beta1 = static_cast<float>(config.beta1);
  const float beta2 = static_cast<float>(config.beta2);
  const float decay = static_cast<float>(1.0 - lr * config.weightDecay);
  const float stepSize = static_cast<float>(lr / correction1);
  const float rootCorrection2 = static_cast<float>(std::sqrt(correction2));
  const float eps = static_cast<float>(config.eps);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    float g = scale * grad[i];
    float m = beta1 * expAvg[i] + (1.0f - beta1) * g;
    float v = beta2 * expAvgSq[i] + (1.0f - beta2) * g * g;
    newParam[i] = param[i] * decay -
                  stepSize * m / (std::sqrt(v) / rootCorrection2 + eps);
    newExpAvg[i] = m;
    newExpAvgSq[i] = v;
  }
}
