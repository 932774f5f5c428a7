//===- Pipelines.cpp - the named pass pipelines of the compiler -----------===//

#include "moe/Pipelines/Pipelines.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;
using namespace mlir::moe;

void moe::buildTrainPipeline(OpPassManager &pm,
                             const TrainPipelineOptions &options) {
  // expert-ranks alone reaches the pass, which refuses one rank.
  if (options.expertParallel != 1 || options.expertRanks != 0) {
    ExpertParallelOptions expertParallel;
    expertParallel.ranks = options.expertParallel;
    expertParallel.expertRanks = options.expertRanks;
    pm.addPass(createExpertParallel(expertParallel));
  }
  // Negative means "as the model says"; NaN reaches the pass's check.
  if (!(options.gateNorm < 0)) {
    GateNormOptions gateNorm;
    gateNorm.lambda = options.gateNorm;
    pm.addPass(createGateNorm(gateNorm));
  }
  pm.addPass(createFuseRouter());
  AutodiffOptions autodiff;
  autodiff.recompute = options.recompute;
  pm.addPass(createAutodiff(autodiff));
  if (options.precision != "f32") {
    MixedPrecisionOptions mixed;
    mixed.dtype = options.precision;
    mixed.weightCopies = options.weightCopies;
    pm.addPass(createMixedPrecision(mixed));
  }
  if (options.adaptiveAux) {
    AdaptiveAuxOptions adaptiveAux;
    adaptiveAux.xi = options.xi;
    adaptiveAux.alphaMax = options.alphaMax;
    adaptiveAux.beta = options.beta;
    adaptiveAux.initialAlpha = options.initialAlpha;
    pm.addPass(createAdaptiveAux(adaptiveAux));
  }
  OptimizerOptions optimizer;
  optimizer.maxLr = options.lr;
  optimizer.minLr = options.minLr;
  optimizer.warmupSteps = options.warmupSteps;
  optimizer.decaySteps = options.decaySteps;
  optimizer.lrDecay = options.lrDecay;
  optimizer.beta1 = options.beta1;
  optimizer.beta2 = options.beta2;
  optimizer.epsilon = options.eps;
  optimizer.weightDecay = options.weightDecay;
  optimizer.maxGradNorm = options.maxGradNorm;
  optimizer.noDecay.assign(options.noDecay.begin(), options.noDecay.end());
  pm.addPass(createOptimizer(optimizer));
  if (options.microBatches != 1) {
    AccumulateGradientsOptions accumulate;
    accumulate.microBatches = options.microBatches;
    pm.addPass(createAccumulateGradients(accumulate));
  }
  if (options.distributedOptimizer)
    pm.addPass(createDistributedOptimizer());
}

void moe::buildCodegenPipeline(OpPassManager &pm, StringRef targetName) {
  AttachTargetOptions target;
  target.targetName = targetName.str();
  pm.addPass(createAttachTarget(target));
  pm.addPass(createNarrowResults());
  pm.addPass(createWidenOperands());
  pm.addPass(createFuseElementwise());
  PlanMemoryOptions plan;
  plan.report = false;
  pm.addPass(createPlanMemory(plan));
}

void moe::registerMoePipelines() {
  PassPipelineRegistration<TrainPipelineOptions>(
      "moe-train-pipeline",
      "A model's @forward to a complete @train_step: "
      "[moe-expert-parallel], [moe-gate-norm], "
      "moe-fuse-router, moe-autodiff, [moe-mixed-precision], "
      "[moe-adaptive-aux], moe-optimizer, [moe-accumulate-gradients], "
      "[moe-distributed-optimizer]",
      buildTrainPipeline);
  PassPipelineRegistration<>(
      "moe-cpu-codegen",
      "A train step to planned IR for the C++ target: moe-attach-target, "
      "moe-narrow-results, moe-widen-operands, moe-fuse-elementwise, "
      "moe-plan-memory",
      [](OpPassManager &pm) { buildCodegenPipeline(pm, "cpu"); });
  PassPipelineRegistration<>(
      "moe-cuda-codegen",
      "A train step to planned IR for the CUDA target: moe-attach-target, "
      "moe-narrow-results, moe-widen-operands, moe-fuse-elementwise, "
      "moe-plan-memory",
      [](OpPassManager &pm) { buildCodegenPipeline(pm, "cuda"); });
}
