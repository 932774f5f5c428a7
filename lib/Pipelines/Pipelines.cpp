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
  ExpertBiasOptions expertBias;
  expertBias.rate = options.expertBiasRate;
  pm.addPass(createExpertBias(expertBias));
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

namespace {

/// An option given for a pass that the pipeline's other options leave out
/// would do nothing: the first such option's name, or "".
std::string unusedOption(const TrainPipelineOptions &options) {
  if (!options.adaptiveAux)
    for (auto [given, name] :
         {std::pair(options.xi.hasValue(), "xi"),
          std::pair(options.alphaMax.hasValue(), "alpha-max"),
          std::pair(options.beta.hasValue(), "beta"),
          std::pair(options.initialAlpha.hasValue(), "initial-alpha")})
      if (given)
        return std::string(name) + " (an option of adaptive-aux=true)";
  if (options.precision == "f32" && options.weightCopies.hasValue())
    return "weight-copies (an option of precision=bf16)";
  return "";
}

} // namespace

void moe::registerMoePipelines() {
  registerPassPipeline(
      "moe-train-pipeline",
      "A model's @forward to a complete @train_step: "
      "[moe-expert-parallel], [moe-gate-norm], "
      "moe-fuse-router, moe-autodiff, [moe-mixed-precision], "
      "[moe-adaptive-aux], moe-expert-bias, moe-optimizer, "
      "[moe-accumulate-gradients], "
      "[moe-distributed-optimizer]",
      [](OpPassManager &pm, StringRef text,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        TrainPipelineOptions options;
        if (failed(options.parseFromString(text)))
          return failure();
        if (std::string unused = unusedOption(options); !unused.empty())
          return errorHandler("moe-train-pipeline: " + unused +
                              " does nothing here");
        buildTrainPipeline(pm, options);
        return success();
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> optionsHandler) {
        optionsHandler(TrainPipelineOptions());
      });
  for (StringRef target : {"cpu", "cuda"})
    registerPassPipeline(
        ("moe-" + target + "-codegen").str(),
        ("A train step to planned IR for the " +
         StringRef(target == "cpu" ? "C++" : "CUDA") +
         " target: moe-attach-target, moe-narrow-results, "
         "moe-widen-operands, moe-fuse-elementwise, moe-plan-memory")
            .str(),
        [target](OpPassManager &pm, StringRef text,
                 function_ref<LogicalResult(const Twine &)> errorHandler) {
          if (!text.empty())
            return errorHandler("moe-" + target +
                                "-codegen takes no options, got '" + text +
                                "'");
          buildCodegenPipeline(pm, target);
          return success();
        },
        [](function_ref<void(const mlir::detail::PassOptions &)>) {});
}
