//===- Pipelines.h - the named pass pipelines of the compiler ---*- C++ -*-===//
//
// What moe-compile runs, as functions that build pass pipelines and as
// moe-opt pipelines of the same names, so that the tool, the tests and
// users run one definition.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PIPELINES_PIPELINES_H
#define MOE_PIPELINES_PIPELINES_H

#include "moe/Transforms/Passes.h"

#include "mlir/Pass/PassOptions.h"

namespace mlir::moe {

/// --moe-train-pipeline: a model's @forward to a complete @train_step
/// (expert parallelism, gate normalization, router fusion, autodiff, mixed
/// precision, adaptive aux coefficients, AdamW, gradient accumulation over
/// micro-batches, the distributed optimizer). The optimizer's,
/// moe-adaptive-aux's and `weight-copies` keep their passes' option names.
struct TrainPipelineOptions : public PassPipelineOptions<TrainPipelineOptions> {
  PassOptions::Option<int64_t> expertParallel{
      *this, "expert-parallel",
      llvm::cl::desc("Ranks to partition experts and batch over "
                     "(moe-expert-parallel; 1: one process)"),
      llvm::cl::init(1)};
  PassOptions::Option<int64_t> expertRanks{
      *this, "expert-ranks",
      llvm::cl::desc("Ranks that share each layer's experts, replicated "
                     "over the others (moe-expert-parallel's expert-ranks; "
                     "0: all)"),
      llvm::cl::init(0)};
  PassOptions::Option<double> gateNorm{
      *this, "gate-norm",
      llvm::cl::desc("moe-gate-norm's lambda for every layer (0: off; "
                     "negative: as the model says)"),
      llvm::cl::init(-1.0)};
  PassOptions::Option<bool> recompute{
      *this, "recompute",
      llvm::cl::desc("Recompute each layer's forward in the backward pass"),
      llvm::cl::init(false)};

  PassOptions::Option<std::string> precision{
      *this, "precision",
      llvm::cl::desc("GEMM operand precision: f32, or bf16 with f32 "
                     "accumulation and master weights (moe-mixed-precision)"),
      llvm::cl::init("f32")};
  PassOptions::Option<std::string> weightCopies{
      *this, "weight-copies",
      llvm::cl::desc("moe-mixed-precision's weight-copies: per-gemm, "
                     "per-step or per-expert"),
      llvm::cl::init("per-gemm")};

  PassOptions::Option<bool> adaptiveAux{
      *this, "adaptive-aux",
      llvm::cl::desc("Adaptive aux-loss coefficients (moe-adaptive-aux)"),
      llvm::cl::init(false)};
  PassOptions::Option<double> xi{*this, "xi",
                                 llvm::cl::desc("moe-adaptive-aux's xi"),
                                 llvm::cl::init(AdaptiveAuxOptions().xi)};
  PassOptions::Option<double> alphaMax{
      *this, "alpha-max", llvm::cl::desc("moe-adaptive-aux's alpha-max"),
      llvm::cl::init(AdaptiveAuxOptions().alphaMax)};
  PassOptions::Option<double> beta{*this, "beta",
                                   llvm::cl::desc("moe-adaptive-aux's beta"),
                                   llvm::cl::init(AdaptiveAuxOptions().beta)};
  PassOptions::Option<double> initialAlpha{
      *this, "initial-alpha",
      llvm::cl::desc("moe-adaptive-aux's initial-alpha"),
      llvm::cl::init(AdaptiveAuxOptions().initialAlpha)};

  PassOptions::Option<double> expertBiasRate{
      *this, "expert-bias-rate",
      llvm::cl::desc("moe-expert-bias's rate, for models with expert "
                     "biases (moe_router_enable_expert_bias)"),
      llvm::cl::init(ExpertBiasOptions().rate)};

  PassOptions::Option<double> lr{*this, "lr",
                                 llvm::cl::desc("moe-optimizer's lr"),
                                 llvm::cl::init(OptimizerOptions().maxLr)};
  PassOptions::Option<double> minLr{*this, "min-lr",
                                    llvm::cl::desc("moe-optimizer's min-lr"),
                                    llvm::cl::init(OptimizerOptions().minLr)};
  PassOptions::Option<int64_t> warmupSteps{
      *this, "warmup-steps", llvm::cl::desc("moe-optimizer's warmup-steps"),
      llvm::cl::init(OptimizerOptions().warmupSteps)};
  PassOptions::Option<int64_t> decaySteps{
      *this, "decay-steps", llvm::cl::desc("moe-optimizer's decay-steps"),
      llvm::cl::init(OptimizerOptions().decaySteps)};
  PassOptions::Option<std::string> lrDecay{
      *this, "lr-decay", llvm::cl::desc("moe-optimizer's lr-decay"),
      llvm::cl::init(OptimizerOptions().lrDecay)};
  PassOptions::Option<double> beta1{*this, "beta1",
                                    llvm::cl::desc("moe-optimizer's beta1"),
                                    llvm::cl::init(OptimizerOptions().beta1)};
  PassOptions::Option<double> beta2{*this, "beta2",
                                    llvm::cl::desc("moe-optimizer's beta2"),
                                    llvm::cl::init(OptimizerOptions().beta2)};
  PassOptions::Option<double> eps{*this, "eps",
                                  llvm::cl::desc("moe-optimizer's eps"),
                                  llvm::cl::init(OptimizerOptions().epsilon)};
  PassOptions::Option<double> weightDecay{
      *this, "weight-decay", llvm::cl::desc("moe-optimizer's weight-decay"),
      llvm::cl::init(OptimizerOptions().weightDecay)};
  PassOptions::Option<double> maxGradNorm{
      *this, "max-grad-norm", llvm::cl::desc("moe-optimizer's max-grad-norm"),
      llvm::cl::init(OptimizerOptions().maxGradNorm)};
  PassOptions::ListOption<std::string> noDecay{
      *this, "no-decay", llvm::cl::desc("moe-optimizer's no-decay")};
  PassOptions::Option<int64_t> microBatches{
      *this, "micro-batches",
      llvm::cl::desc("moe-accumulate-gradients' micro-batches"),
      llvm::cl::init(AccumulateGradientsOptions().microBatches)};
  PassOptions::Option<bool> distributedOptimizer{
      *this, "distributed-optimizer",
      llvm::cl::desc("Split the Adam moments over the ranks that hold "
                     "copies of each parameter (moe-distributed-optimizer)"),
      llvm::cl::init(false)};
};

/// Adds the passes of --moe-train-pipeline to `pm` (on a module).
void buildTrainPipeline(OpPassManager &pm, const TrainPipelineOptions &options);

/// A train step to planned IR for the target named `targetName` (target
/// attribute, elementwise fusion, memory plan): --moe-cpu-codegen, ready for
/// moe-translate --emit=cpp, and --moe-cuda-codegen, for --emit=cuda.
void buildCodegenPipeline(OpPassManager &pm, StringRef targetName);

/// Registers the pipelines with moe-opt's pass registry.
void registerMoePipelines();

} // namespace mlir::moe

#endif // MOE_PIPELINES_PIPELINES_H
