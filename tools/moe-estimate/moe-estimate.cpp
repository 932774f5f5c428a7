//===- moe-estimate.cpp - plan a cluster-scale run at compile time --------===//
//
// Compiles a model's train step (one sequence per rank, for each
// expert-parallel degree it needs), counts its flops, bytes and collectives
// with the cost model, and predicts a layout's memory, step time,
// tokens/GPU/s and MFU on a cluster, or searches the layouts that fit.
//
//===----------------------------------------------------------------------===//

#include "moe/Analysis/ProgramCost.h"
#include "moe/Estimate/LayoutSearch.h"
#include "moe/Frontend/ModelBuilder.h"
#include "moe/Frontend/ModelConfig.h"
#include "moe/InitAllDialects.h"
#include "moe/Pipelines/Pipelines.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolDiagnostics.h"
#include "moe/Support/ToolFiles.h"
#include "moert/Error.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include <set>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory toolOptions("moe-estimate options");

static cl::opt<std::string>
    configPath(cl::cat(toolOptions), cl::Positional, cl::Required,
               cl::desc("<config.json | model folder>"));
static cl::opt<std::string> clusterPath(cl::cat(toolOptions), "cluster",
                                        cl::Required,
                                        cl::desc("Cluster file (JSON)"),
                                        cl::value_desc("file"));
static cl::opt<int64_t>
    gpus(cl::cat(toolOptions), "gpus", cl::init(0),
         cl::desc("GPUs to plan for (default: the cluster file's)"));
static cl::opt<int64_t> globalBatch(cl::cat(toolOptions), "global-batch",
                                    cl::Required,
                                    cl::desc("Sequences per optimizer step"));
static cl::opt<int64_t>
    seqLen(cl::cat(toolOptions), "seq-len", cl::init(0),
           cl::desc("Tokens per sequence (default: the config's)"));
static cl::opt<std::string>
    layoutText(cl::cat(toolOptions), "layout",
               cl::desc("dp=D,tp=T,ep=E,pp=P[,mbs=M][,split=A+B+...]"
                        "[,zero1][,recompute]; a degree left out is 1"));
static cl::opt<bool>
    search(cl::cat(toolOptions), "search",
           cl::desc("Rank the layouts that fit (with --layout: those with its "
                    "dp, tp, ep and pp)"));
static cl::opt<int64_t> top(cl::cat(toolOptions), "top", cl::init(10),
                            cl::desc("Layouts --search prints (default 10)"));

static int fail(const llvm::Twine &message) {
  // After the estimate it explains.
  llvm::outs().flush();
  llvm::errs() << "moe-estimate: error: " << message << "\n";
  return 1;
}

/// The cost profile of the model's train step partitioned over `ep` ranks,
/// each with one sequence; the config's warnings are said where
/// `printWarnings`.
static FailureOr<moe::ModelProfile>
profileModel(MLIRContext &context, llvm::StringRef configText,
             const moe::ModelShape &shape, const moe::Cluster &cluster,
             int64_t ep, bool printWarnings) {
  llvm::Expected<OwningOpRef<ModuleOp>> module = moe::importModelConfig(
      context, configText, configPath,
      {Float32Type::get(&context), ep, shape.seqLen, printWarnings});
  if (!module) {
    fail(llvm::toString(module.takeError()));
    return failure();
  }
  moe::TrainPipelineOptions train;
  train.expertParallel = ep;
  PassManager pm = PassManager::on<ModuleOp>(&context);
  moe::buildTrainPipeline(pm, train);
  if (failed(pm.run(**module)))
    return failure();
  auto trainStep = (*module)->lookupSymbol<func::FuncOp>("train_step");
  if (!trainStep) {
    fail("the train pipeline made no @train_step");
    return failure();
  }
  FailureOr<moe::ProgramCost> program = moe::analyzeTrainStep(trainStep);
  if (failed(program))
    return failure();
  if (program->numLayers != shape.layers) {
    fail(llvm::formatv("{0} has {1} layers, but its train step {2}", configPath,
                       shape.layers, program->numLayers));
    return failure();
  }
  return moe::profileProgram(*program, shape, cluster);
}

/// `value` with an SI prefix and 3 significant digits: "43.5 GB",
/// "12.3 ms", "1.29 PFLOP".
static std::string si(double value, llvm::StringRef unit) {
  static const std::pair<double, const char *> prefixes[] = {
      {1e15, "P"}, {1e12, "T"}, {1e9, "G"},  {1e6, "M"},
      {1e3, "k"},  {1, ""},     {1e-3, "m"}, {1e-6, "u"}};
  if (value == 0)
    return ("0 " + unit).str();
  for (const auto &[scale, prefix] : prefixes)
    if (std::abs(value) >= scale || scale == 1e-6)
      return llvm::formatv("{0} {1}{2}", llvm::format("%.3g", value / scale),
                           prefix, unit)
          .str();
  return "";
}

static void printEstimate(const moe::Estimate &estimate,
                          const moe::ModelShape &shape) {
  llvm::raw_ostream &os = llvm::outs();
  os << "layout: " << moe::formatLayout(estimate.layout) << "\n";
  std::string options = moe::compileOptionsOf(estimate.layout, globalBatch);
  os << (options.empty() ? "moe-compile builds no tensor or pipeline "
                           "parallelism (tp, pp > 1): an estimate only\n"
                         : "moe-compile options: " + options + "\n");
  os << llvm::formatv("global batch: {0} sequences of {1} tokens, {2} "
                      "micro-batches per pipeline\n",
                      globalBatch.getValue(), shape.seqLen,
                      estimate.microBatches);
  os << llvm::formatv(
      "memory per GPU (stage {0}, the fullest): weights {1}, gradients {2}, "
      "optimizer {3}, activations {4}, reserved {5}; total {6}\n",
      estimate.fullestStage, si(estimate.paramBytes, "B"),
      si(estimate.gradBytes, "B"), si(estimate.optimizerBytes, "B"),
      si(estimate.activationBytes, "B"), si(estimate.reservedBytes, "B"),
      si(estimate.totalBytes, "B"));
  double tokens = static_cast<double>(globalBatch) * shape.seqLen;
  os << llvm::formatv(
      "model flops per GPU per step: {0} ({1} per token)\n",
      si(estimate.flops, "FLOP"),
      si(estimate.flops * estimate.layout.gpus() / tokens, "FLOP"));
  os << "bytes per GPU per step (mean over stages):";
  for (const auto &[name, bytes] : estimate.collectiveBytes)
    os << " " << name << " " << si(bytes, "B") << ";";
  os << "\n";
  auto [fastest, slowest] = std::minmax_element(estimate.stageSeconds.begin(),
                                                estimate.stageSeconds.end());
  os << llvm::formatv("stage time per micro-batch: {0} to {1} (stage {2})\n",
                      si(*fastest, "s"), si(*slowest, "s"),
                      slowest - estimate.stageSeconds.begin());
  os << llvm::formatv(
      "step time: {0} = pipeline {1} (bubble {2:F1}%) + "
      "gradient reduction {3} + optimizer {4}\n",
      si(estimate.stepSeconds, "s"), si(estimate.pipelineSeconds, "s"),
      estimate.bubbleFraction * 100, si(estimate.syncSeconds, "s"),
      si(estimate.optimizerSeconds, "s"));
  os << llvm::formatv("throughput: {0:F0} tokens/GPU/s, {1}/s per GPU, MFU "
                      "{2:F1}%\n",
                      estimate.tokensPerGpuPerSecond,
                      si(estimate.flops / estimate.stepSeconds, "FLOP"),
                      estimate.mfu * 100);
}

static void printSearch(const moe::SearchResult &result,
                        const moe::ModelShape &shape) {
  llvm::raw_ostream &os = llvm::outs();
  os << llvm::formatv("searched {0} layouts: {1} fit, {2} do not\n",
                      result.ranked.size() + result.rejected.size(),
                      result.ranked.size(), result.rejected.size());
  os << "rank  tokens/GPU/s  MFU     step      memory    layout\n";
  for (size_t i = 0; i < result.ranked.size() && i < size_t(top); ++i) {
    const moe::Estimate &estimate = result.ranked[i];
    os << llvm::formatv("{0,4}  {1,12:F0}  {2,5:F1}%  {3,8}  {4,8}  {5}\n",
                        i + 1, estimate.tokensPerGpuPerSecond,
                        estimate.mfu * 100, si(estimate.stepSeconds, "s"),
                        si(estimate.totalBytes, "B"),
                        moe::formatLayout(estimate.layout));
  }
  // The best that moe-compile builds, which has no tensor or pipeline
  // parallelism.
  for (size_t i = 0; i < result.ranked.size(); ++i) {
    std::string options =
        moe::compileOptionsOf(result.ranked[i].layout, globalBatch);
    if (options.empty())
      continue;
    os << llvm::formatv("moe-compile builds rank {0} at best ({1}): {2}\n",
                        i + 1, moe::formatLayout(result.ranked[i].layout),
                        options);
    break;
  }
  if (!result.ranked.empty()) {
    // The split's effect: the best layout's degrees with the even split
    // and with the extra layers on the first or the last stages.
    const moe::Estimate &best = result.ranked.front();
    int64_t stages = best.layout.pp;
    std::set<std::vector<int64_t>> printed;
    for (const auto &[name, split] :
         {std::pair("even", moe::evenSplit(shape.layers, stages)),
          std::pair("first-heavy", moe::heavySplit(shape.layers, stages, true)),
          std::pair("last-heavy",
                    moe::heavySplit(shape.layers, stages, false))}) {
      if (!printed.insert(split).second)
        continue;
      moe::Layout layout = best.layout;
      layout.split = split;
      std::string text = moe::formatLayout(layout);
      for (const auto *list : {&result.ranked, &result.rejected}) {
        auto same = llvm::find_if(*list, [&](const moe::Estimate &e) {
          return moe::formatLayout(e.layout) == text;
        });
        if (same == list->end())
          continue;
        if (same->fits())
          os << llvm::formatv(
              "{0} split: {1:F0} tokens/GPU/s ({2:+F1}%), "
              "{3}: {4}\n",
              name, same->tokensPerGpuPerSecond,
              (same->tokensPerGpuPerSecond / best.tokensPerGpuPerSecond - 1) *
                  100,
              si(same->totalBytes, "B"), text);
        else
          os << name << " split: " << same->rejection << ": " << text << "\n";
        break;
      }
    }
  }
  for (size_t i = 0; i < result.rejected.size() && i < 5; ++i)
    os << "rejected " << moe::formatLayout(result.rejected[i].layout) << ": "
       << result.rejected[i].rejection << "\n";
}

static int run() {
  if (!search && layoutText.empty())
    return fail("give --layout, --search, or both (to search the split, "
                "micro-batch and recomputation of a layout's degrees)");
  // 2^31 sequences is thousands of times any real batch; more overflows
  // the token counts of the cost model.
  if (globalBatch <= 0 || globalBatch >= (int64_t(1) << 31))
    return fail("--global-batch must be a positive count of sequences below "
                "2^31");
  if (top <= 0)
    return fail("--top must be positive");
  if (top.getNumOccurrences() > 0 && !search)
    return fail("--top counts the layouts --search prints: give --search");
  // A model folder stands for its config.json, as for moe-import.
  configPath.setValue(moe::modelInputPath(configPath));
  std::unique_ptr<llvm::MemoryBuffer> configFile =
      moe::readToolInput(configPath);
  llvm::Expected<moe::ModelConfig> config =
      moe::parseModelConfig(configFile->getBuffer(), configPath);
  if (!config)
    return fail(llvm::toString(config.takeError()));
  std::unique_ptr<llvm::MemoryBuffer> clusterFile =
      moe::readToolInput(clusterPath);
  llvm::Expected<moe::Cluster> cluster =
      moe::parseCluster(clusterFile->getBuffer(), clusterPath);
  if (!cluster)
    return fail(llvm::toString(cluster.takeError()));
  if (gpus.getNumOccurrences()) {
    // As the cluster file's "gpus": products of the layout stay in range.
    if (gpus >= 1'000'000'000)
      return fail(
          llvm::formatv("--gpus {0} is not below 10^9", gpus.getValue()));
    if (gpus <= 0 || gpus % cluster->gpusPerNode)
      return fail(llvm::formatv("--gpus {0} is not a positive multiple of "
                                "the {1} GPUs of a node",
                                gpus.getValue(), cluster->gpusPerNode));
    cluster->gpus = gpus;
  }
  moe::ModelShape shape;
  shape.layers = config->numLayers;
  shape.hidden = config->hiddenSize;
  shape.heads = config->numHeads;
  shape.kvHeads = config->numKvHeads;
  shape.experts = config->numExperts;
  if (seqLen.getNumOccurrences() && seqLen <= 0)
    return fail("--seq-len must be positive");
  shape.seqLen =
      seqLen.getNumOccurrences() ? seqLen.getValue() : config->seqLen;

  std::optional<moe::Layout> layout;
  if (!layoutText.empty()) {
    llvm::Expected<moe::Layout> parsed = moe::parseLayout(layoutText);
    if (!parsed)
      return fail(llvm::toString(parsed.takeError()));
    layout = *parsed;
  }
  std::vector<int64_t> degrees =
      layout ? std::vector<int64_t>{layout->ep}
             : moe::expertParallelDegrees(shape, *cluster);
  if (layout)
    if (std::string why = moe::expertParallelError(shape, layout->ep);
        !why.empty())
      return fail("--layout: " + why);

  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  moe::ToolDiagnosticHandler diagnostics(sourceMgr, &context, configPath);
  std::map<int64_t, moe::ModelProfile> profiles;
  for (int64_t ep : degrees) {
    FailureOr<moe::ModelProfile> profile =
        profileModel(context, configFile->getBuffer(), shape, *cluster, ep,
                     /*printWarnings=*/profiles.empty());
    if (failed(profile))
      return 1;
    profiles.emplace(ep, std::move(*profile));
  }

  llvm::outs() << llvm::formatv(
      "model: {0} layers, hidden {1}, {2} experts; {3} tokens per sequence\n"
      "cluster: {4}, {5} GPUs in nodes of {7} ({6} nodes)\n",
      shape.layers, shape.hidden, shape.experts, shape.seqLen, cluster->name,
      cluster->gpus, cluster->gpus / cluster->gpusPerNode,
      cluster->gpusPerNode);
  if (layout) {
    // The layout's degrees must be possible, searched or not.
    moe::Estimate estimated =
        moe::estimate(profiles.at(layout->ep), *cluster, *layout, globalBatch);
    if (!estimated.priced)
      return fail("--layout: " + estimated.rejection);
    if (!search) {
      printEstimate(estimated, shape);
      if (!estimated.fits())
        return fail("the layout does not fit: " + estimated.rejection);
      return 0;
    }
  }
  moe::SearchResult result = moe::searchLayouts(profiles, *cluster, globalBatch,
                                                layout ? &*layout : nullptr);
  printSearch(result, shape);
  if (!result.ranked.empty())
    return 0;
  if (result.rejected.empty())
    return fail(llvm::formatv("no layout of {0} GPUs splits the model and a "
                              "global batch of {1} sequences",
                              cluster->gpus, globalBatch.getValue()));
  auto smallest = llvm::min_element(
      result.rejected, [](const moe::Estimate &a, const moe::Estimate &b) {
        return a.totalBytes < b.totalBytes;
      });
  return fail(llvm::formatv("none of the {0} layouts fits; the smallest, {1}: "
                            "{2}",
                            result.rejected.size(),
                            moe::formatLayout(smallest->layout),
                            smallest->rejection));
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  moe::initToolFiles("moe-estimate");
  moe::parseToolCommandLine(argc, argv, toolOptions,
                            "predict a layout's memory and step time\n");
  return moe::runTool(run);
}
