//===- moe-run.cpp - the reference interpreter ----------------------------===//
//
// Evaluates one function of a moe-dialect module naively on the CPU. Globals
// come from a safetensors file (--params), a compiled binary's checkpoint
// (--resume, which also sets where --data goes on) or their #moe.init
// initializers (--seed); arguments from a safetensors file (--inputs, tensors
// named by the arguments' `moe.input` attributes) or, for token arguments,
// from a text file (--data). Results are printed and optionally written.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelConfig.h"
#include "moe/InitAllDialects.h"
#include "moe/Interpreter/CheckpointState.h"
#include "moe/Interpreter/Evaluator.h"
#include "moe/Interpreter/GradientCheck.h"
#include "moe/MoeDialect.h"
#include "moe/Support/ParseModule.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolDiagnostics.h"
#include "moe/Support/ToolFiles.h"
#include "moert/Checkpoint.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/MetricsLog.h"
#include "moert/MicroBatches.h"
#include "moert/Safetensors.h"
#include "moert/StateNames.h"
#include "moert/TokenData.h"
#include "moert/WeightSource.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <new>
#include <thread>

using namespace mlir;
using moe::ref::Tensor;
namespace cl = llvm::cl;

static cl::OptionCategory toolOptions("moe-run options");

static cl::opt<std::string> modelPath(cl::cat(toolOptions), cl::Positional,
                                      cl::Required, cl::desc("<model.mlir>"));
static cl::opt<std::string> entry(cl::cat(toolOptions), "entry",
                                  cl::init("forward"),
                                  cl::desc("Function to run"));
static cl::opt<std::string>
    paramsPath(cl::cat(toolOptions), "params",
               cl::desc("Weights: a safetensors file (ours, or a Hugging Face "
                        "model's) or a Hugging Face model folder; every "
                        "trainable global must be there, the others are "
                        "loaded when present, but for the config's "
                        "constants (fixed loss coefficients)"),
               cl::value_desc("path"));
static cl::opt<std::string> initFromPath(
    cl::cat(toolOptions), "init-from",
    cl::desc("A checkpoint of the dense model that this model was upcycled "
             "from (moe-upcycle): its globals are built by their rules"),
    cl::value_desc("path"));
static cl::opt<std::string> resumePath(
    cl::cat(toolOptions), "resume",
    cl::desc("A compiled binary's checkpoint to go on from: every global it "
             "holds (all but the config's constants) from it, the batches of "
             "--data that the binary would draw "
             "next (its seed and position), and step numbers counting on "
             "from its step; so any step of a compiled run replays here"),
    cl::value_desc("file"));
static cl::opt<uint64_t> seed(cl::cat(toolOptions), "seed", cl::init(0),
                              cl::desc("Seed of the #moe.init initializers"));
static cl::opt<std::string>
    inputsPath(cl::cat(toolOptions), "inputs",
               cl::desc("Safetensors file with the arguments, named by their "
                        "moe.input attribute (or argN)"),
               cl::value_desc("file"));
static cl::opt<std::string>
    dataPath(cl::cat(toolOptions), "data",
             cl::desc("Text file whose bytes feed the input_ids and labels "
                      "arguments (a seeded random batch of windows)"),
             cl::value_desc("file"));
static cl::opt<uint64_t> dataSeed(cl::cat(toolOptions), "data-seed",
                                  cl::init(0),
                                  cl::desc("Seed of the --data batch"));
static cl::opt<double>
    valFraction(cl::cat(toolOptions), "val-fraction", cl::init(0),
                cl::desc("Draw --data batches from all but this tail of the "
                         "data, as a training binary given the same "
                         "--val-fraction trains on (default 0: all of it)"));
static cl::opt<std::string>
    outputPath(cl::cat(toolOptions), "output",
               cl::desc("Write the results to a safetensors file"),
               cl::value_desc("file"));
static cl::opt<std::string>
    saveParamsPath(cl::cat(toolOptions), "save-params",
                   cl::desc("Write every global a checkpoint holds, after "
                            "the run, to a safetensors file"),
                   cl::value_desc("file"));

static cl::opt<uint64_t>
    steps(cl::cat(toolOptions), "steps", cl::init(0),
          cl::desc("Run the function this many times on fresh --data "
                   "batches, printing its scalar results (other than "
                   "per-module metrics) per step"));
static cl::opt<std::string> metricsPath(
    cl::cat(toolOptions), "metrics",
    cl::desc("With --steps, append one JSON object per step with the step "
             "and every scalar or vector result by name (the compiled "
             "driver's --metrics format)"),
    cl::value_desc("file"));
static cl::opt<bool>
    gradCheck(cl::cat(toolOptions), "grad-check",
              cl::desc("Check moe-autodiff's gradients of the function's "
                       "first result with finite differences (use f64)"));
static cl::opt<int64_t> gradSamples(cl::cat(toolOptions), "grad-samples",
                                    cl::init(4),
                                    cl::desc("Elements checked per global"));
static cl::opt<double> gradStep(cl::cat(toolOptions), "grad-step",
                                cl::init(1e-4),
                                cl::desc("Finite-difference step"));
static cl::opt<double>
    gradTolerance(cl::cat(toolOptions), "grad-tolerance", cl::init(1e-6),
                  cl::desc("Largest relative error --grad-check accepts"));

static cl::opt<int64_t>
    ranks(cl::cat(toolOptions), "ranks", cl::init(1),
          cl::desc("Run the function as this many ranks of an SPMD group (its "
                   "shard collectives on a grid of that many processes), one "
                   "thread each; every argument is the rank's part, along "
                   "axis 0, of the global argument from --inputs or --data. "
                   "Rank 0 prints and writes the results"));

namespace {

std::string nameOf(func::FuncOp func, unsigned index, bool isResult) {
  auto name =
      isResult
          ? func.getResultAttrOfType<StringAttr>(index, moe::kOutputAttrName)
          : func.getArgAttrOfType<StringAttr>(index, moe::kInputAttrName);
  if (name)
    return name.str();
  return (isResult ? "result" : "arg") + std::to_string(index);
}

/// Refuses a tensor of --inputs that is an argument of no function of the
/// module (another entry's arguments may share the file): a misspelt name
/// would leave its argument to --data, or fail without naming the tensor.
void requireInputsUsed(ModuleOp module, func::FuncOp entry) {
  moert::SafetensorsReader inputs(inputsPath);
  llvm::StringSet<> arguments;
  module.walk([&](func::FuncOp func) {
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      arguments.insert(nameOf(func, i, /*isResult=*/false));
  });
  for (const moert::TensorView &view : inputs.getTensors()) {
    if (arguments.contains(view.name))
      continue;
    std::vector<std::string> names;
    for (unsigned i = 0; i < entry.getNumArguments(); ++i)
      names.push_back(nameOf(entry, i, /*isResult=*/false));
    moert::fail("{}: tensor '{}' is an argument of no function of the model "
                "(@{} takes {})",
                inputs.getPath(), view.name, entry.getSymName().str(),
                names.empty() ? "nothing" : llvm::join(names, ", "));
  }
}

Tensor tokenTensor(const std::vector<int32_t> &values,
                   std::vector<int64_t> shape) {
  Tensor tensor = Tensor::zeros(moert::DType::I32, std::move(shape));
  std::copy(values.begin(), values.end(), tensor.data.begin());
  return tensor;
}

/// Builds the arguments of a function, step after step: tensors from
/// --inputs by name, token batches from --data (a new batch each step).
class ArgumentSource {
public:
  /// The arguments of rank `rank` of `ranks`; --data batches are drawn
  /// from `dataStart` (a seed, and a position in its stream).
  ArgumentSource(func::FuncOp func, int64_t ranks, int64_t rank,
                 moert::RunPosition dataStart)
      : func(func), ranks(ranks), rank(rank), dataStart(dataStart) {
    if (!inputsPath.empty())
      inputs.emplace(inputsPath);
  }

  FailureOr<std::vector<Tensor>> next();

private:
  /// This rank's part of a global argument.
  Tensor part(const Tensor &global) const {
    return ranks == 1 ? global : moe::ref::split(global, 0, ranks)[rank];
  }

  func::FuncOp func;
  int64_t ranks, rank;
  moert::RunPosition dataStart;
  std::optional<moert::SafetensorsReader> inputs;
  std::optional<moert::BatchSampler> text;
};

FailureOr<std::vector<Tensor>> ArgumentSource::next() {
  std::optional<moert::TokenBatch> batch;
  std::vector<Tensor> arguments;
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    auto type = cast<RankedTensorType>(func.getArgument(i).getType());
    std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
    std::string name = nameOf(func, i, /*isResult=*/false);
    if (inputs) {
      if (const moert::TensorView *view = inputs->find(name)) {
        arguments.push_back(part(Tensor::fromView(*view)));
        continue;
      }
    }
    bool isTokens = name == "input_ids" || name == "labels";
    if (!dataPath.empty() && isTokens && shape.size() == 2) {
      // Every rank draws the global batch and keeps its rows.
      std::vector<int64_t> global = {shape[0] * ranks, shape[1]};
      if (!text) {
        std::vector<int32_t> tokens = moert::readTokens(dataPath).ids;
        int64_t heldOut = moert::validationTokens(
            static_cast<int64_t>(tokens.size()), valFraction);
        // As the binaries: the data's tokens, not the embedding's error.
        auto table = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(
            func,
            StringAttr::get(func.getContext(),
                            llvm::StringRef(moert::kTokenEmbeddingGlobal)));
        if (auto type =
                table ? dyn_cast<RankedTensorType>(table.getType()) : nullptr;
            type && type.getRank() == 2)
          moert::checkVocabulary(tokens, type.getDimSize(0), dataPath);
        tokens.resize(tokens.size() - heldOut);
        if (rank == 0 && !dataStart.trainData.empty())
          if (std::string data = moert::tokensFingerprint(tokens);
              data != dataStart.trainData)
            llvm::errs() << fmt::format(
                "moe-run: note: --data {} ({}) is not the training split the "
                "checkpoint's run drew its batches from ({}): the batches "
                "differ from that run's (its training split is its data file "
                "without the last --val-fraction, which moe-run takes too)\n",
                static_cast<std::string>(dataPath), data, dataStart.trainData);
        text.emplace(std::move(tokens), shape[1], dataStart.seed,
                     static_cast<std::string>(dataPath));
        text->setPosition(dataStart.trainPosition);
      }
      if (!batch)
        batch = text->next(global[0]);
      arguments.push_back(part(tokenTensor(
          name == "input_ids" ? batch->inputs : batch->targets, global)));
      continue;
    }
    return func.emitError()
           << "no value for argument '" << name << "': give it in --inputs"
           << (isTokens ? " or use --data" : "");
  }
  return arguments;
}

void printTensor(llvm::raw_ostream &os, const std::string &name,
                 const Tensor &tensor) {
  constexpr int64_t kMaxPrinted = 64;
  os << name << " " << moert::dtypeName(tensor.dtype)
     << moert::formatShape(tensor.shape) << " =";
  int64_t printed = std::min(tensor.numel(), kMaxPrinted);
  for (int64_t i = 0; i < printed; ++i)
    os << " " << llvm::format("%.9g", tensor.data[i]);
  if (printed < tensor.numel())
    os << " ... (" << tensor.numel() << " values)";
  os << "\n";
}

/// A scalar as a number, a vector as an array; integers stay integers.
nlohmann::json metricValue(const Tensor &tensor) {
  bool integer =
      tensor.dtype == moert::DType::I32 || tensor.dtype == moert::DType::I64;
  auto element = [&](double value) -> nlohmann::json {
    if (integer)
      return static_cast<int64_t>(value);
    return value;
  };
  if (tensor.shape.empty())
    return element(tensor.data[0]);
  nlohmann::json values = nlohmann::json::array();
  for (double value : tensor.data)
    values.push_back(element(value));
  return values;
}

/// Runs the function once and prints (and with --output writes) its results
/// when `primary`.
int runOnce(moe::Evaluator &evaluator, func::FuncOp func,
            ArgumentSource &source, bool primary) {
  FailureOr<std::vector<Tensor>> arguments = source.next();
  if (failed(arguments))
    return 1;
  FailureOr<std::vector<Tensor>> results = evaluator.run(func, *arguments);
  if (failed(results))
    return 1;
  if (!primary)
    return 0;
  std::vector<std::pair<std::string, const Tensor *>> named;
  for (unsigned i = 0; i < results->size(); ++i) {
    named.push_back({nameOf(func, i, /*isResult=*/true), &(*results)[i]});
    printTensor(llvm::outs(), named.back().first, (*results)[i]);
  }
  if (!outputPath.empty()) {
    std::vector<std::vector<char>> storage;
    moert::writeSafetensors(outputPath, moe::ref::viewsOf(named, storage));
  }
  return 0;
}

/// A step split into micro-batches reports the means of its figures, matched
/// by name: every figure of @train_micro_step and @train_step needs one.
LogicalResult requireNamedFigures(ModuleOp module) {
  for (StringRef name :
       {StringRef(moert::kMicroStepFunction), StringRef("train_step")}) {
    auto function = module.lookupSymbol<func::FuncOp>(name);
    if (!function)
      continue; // A missing entry is named where it is looked up.
    for (unsigned i = 0; i < function.getNumResults(); ++i)
      if (auto type = dyn_cast<RankedTensorType>(function.getResultTypes()[i]);
          type && type.getRank() <= 1 &&
          !function.getResultAttr(i, moe::kOutputAttrName))
        return function.emitError()
               << "result " << i << " has no '" << moe::kOutputAttrName
               << "' name: a step split into micro-batches reports the "
                  "means of its figures by name";
  }
  return success();
}

/// --steps: runs the function repeatedly (a train step updates its globals
/// in place) on fresh batches and prints its scalar results per step,
/// numbering the steps from `firstStep` (after a checkpoint's steps), and
/// appends them to `metrics` when given. The train step of a model split into
/// micro-batches (moe-accumulate-gradients) runs after its micro steps, each on
/// a batch of its own; a step's figures are their means.
int train(moe::Evaluator &evaluator, func::FuncOp func, ArgumentSource &source,
          bool primary, uint64_t firstStep, moert::MetricsLog *metrics) {
  auto module = func->getParentOfType<ModuleOp>();
  auto microBatches =
      module->getAttrOfType<IntegerAttr>(moe::kMicroBatchesAttrName);
  auto microStep = module.lookupSymbol<func::FuncOp>(moert::kMicroStepFunction);
  int64_t calls = 1;
  // The verifier saw @train_micro_step beside moe.micro_batches.
  if (microBatches && func.getSymName() == "train_step")
    calls = microBatches.getInt();
  uint64_t lastStep = firstStep + steps - 1;
  for (uint64_t step = firstStep; step <= lastStep; ++step) {
    auto start = std::chrono::steady_clock::now();
    std::vector<nlohmann::json> figures;
    for (int64_t call = 1; call <= calls; ++call) {
      func::FuncOp function = call < calls ? microStep : func;
      FailureOr<std::vector<Tensor>> arguments = source.next();
      if (failed(arguments))
        return 1;
      FailureOr<std::vector<Tensor>> results =
          evaluator.run(function, *arguments);
      if (failed(results))
        return 1;
      nlohmann::json &line = figures.emplace_back(nlohmann::json::object());
      for (unsigned i = 0; i < results->size(); ++i)
        if (const Tensor &result = (*results)[i]; result.shape.size() <= 1)
          line[nameOf(function, i, /*isResult=*/true)] = metricValue(result);
    }
    nlohmann::json figure = moert::meanOverMicroBatches(figures);
    std::chrono::duration<double> elapsed =
        std::chrono::steady_clock::now() - start;
    // A diverged step stops the run (every rank sees the same values).
    for (std::string_view name :
         {std::string_view("loss"), moert::kGradNormOutput})
      if (auto value = figure.find(name);
          value != figure.end() && !std::isfinite(value->get<double>())) {
        if (primary)
          llvm::errs() << "moe-run: error: training diverged at step " << step
                       << ": " << name << " is " << value->get<double>()
                       << "\n";
        return 1;
      }
    if (!primary)
      continue;
    llvm::outs() << "step " << step << "/" << lastStep;
    // Per-module metrics ("model.layers.0....") go to --metrics only.
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (std::string name = nameOf(func, i, /*isResult=*/true);
          figure.contains(name) && figure[name].is_number() &&
          !StringRef(name).contains('.'))
        llvm::outs() << " " << name << " "
                     << llvm::format("%.6g", figure[name].get<double>());
    llvm::outs() << llvm::format(" (%.2f s)\n", elapsed.count());
    llvm::outs().flush();
    if (metrics) {
      nlohmann::json line = {{"step", step}};
      line.update(figure);
      metrics->append(line);
    }
  }
  return 0;
}

/// --grad-check: compares moe-autodiff's gradients with finite differences.
moe::GradientCheckOptions gradientCheckOptions(func::FuncOp func) {
  moe::GradientCheckOptions options;
  options.function = func.getSymName().str();
  options.seed = seed;
  options.samplesPerTensor = gradSamples;
  options.step = gradStep;
  return options;
}

int runGradientCheck(ModuleOp module, moe::Evaluator &evaluator,
                     func::FuncOp func, ArgumentSource &source,
                     moe::ref::Communicator *communicator) {
  FailureOr<std::vector<Tensor>> arguments = source.next();
  if (failed(arguments))
    return 1;
  FailureOr<std::vector<moe::TensorGradientCheck>> checks = moe::checkGradients(
      module, evaluator, *arguments, gradientCheckOptions(func), communicator);
  if (failed(checks))
    return 1;
  if (communicator && communicator->rank() != 0)
    return 0;
  double worst = 0;
  for (const moe::TensorGradientCheck &check : *checks) {
    llvm::outs() << "grad-check " << check.global << ": relative error "
                 << llvm::format("%.3g", check.relativeError) << " over "
                 << check.checkedElements << " elements\n";
    worst = std::max(worst, check.relativeError);
  }
  bool passed = worst <= gradTolerance;
  llvm::outs() << "grad-check " << (passed ? "passed" : "FAILED") << ": "
               << checks->size() << " tensors, worst relative error "
               << llvm::format("%.3g", worst) << " (tolerance "
               << llvm::format("%.3g", static_cast<double>(gradTolerance))
               << ")\n";
  // f32's rounding swamps a finite difference at any step.
  bool inF64 = llvm::all_of(
      module.getOps<ml_program::GlobalOp>(), [](ml_program::GlobalOp global) {
        return !global->hasAttr(moe::kTrainableAttrName) ||
               getElementTypeOrSelf(global.getType()).isF64();
      });
  if (!passed && !inF64)
    llvm::errs() << "moe-run: note: the model is not f64 (moe-import "
                    "--dtype f64), which finite differences need\n";
  return passed ? 0 : 1;
}

int run(MLIRContext &context) {
  llvm::SourceMgr sourceMgr;
  moe::ToolDiagnosticHandler diagnostics(sourceMgr, &context, modelPath);
  sourceMgr.AddNewSourceBuffer(moe::readToolInput(modelPath), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = moe::parseAndVerifyModule(sourceMgr, &context);
  if (!module)
    return 1;
  auto func = module->lookupSymbol<func::FuncOp>(entry);
  if (!func) {
    llvm::errs() << "moe-run: error: " << modelPath << " has no function @"
                 << entry << "\n";
    return 1;
  }

  if (ranks < 1) {
    llvm::errs() << "moe-run: error: --ranks must be at least 1, got " << ranks
                 << "\n";
    return 1;
  }
  // Checked before any rank thread starts: every grid of the model holds
  // the group of --ranks ranks.
  if (ranks > 1) {
    int64_t groupSize = ranks;
    SmallVector<shard::GridOp> grids(module->getOps<shard::GridOp>());
    if (grids.empty())
      moert::fail("option --ranks {}: the model has no shard grid (run it "
                  "as one rank, or through moe-opt --moe-expert-parallel)",
                  groupSize);
    for (shard::GridOp grid : grids)
      if (ShapedType::getNumElements(grid.getShape()) != groupSize)
        moert::fail("option --ranks {}: the model's shard grid @{} has shape "
                    "{}",
                    groupSize, grid.getSymName().str(),
                    moert::formatShape(grid.getShape().vec()));
  }
  if (!(valFraction >= 0 && valFraction <= moert::kMaxValFraction))
    moert::fail("option --val-fraction: {} is outside [0, {}]",
                static_cast<double>(valFraction), moert::kMaxValFraction);
  if (valFraction.getNumOccurrences() && dataPath.empty())
    moert::fail("option --val-fraction applies to --data, which is not given");
  // Values that would make the gradient check vacuous or meaningless.
  if (gradSamples < 1)
    moert::fail("option --grad-samples: {} is not positive",
                static_cast<int64_t>(gradSamples));
  if (!(gradStep > 0) || !std::isfinite(gradStep))
    moert::fail("option --grad-step: {} is not a positive finite number",
                static_cast<double>(gradStep));
  if (!(gradTolerance >= 0) || !std::isfinite(gradTolerance))
    moert::fail("option --grad-tolerance: {} is not a non-negative finite "
                "number",
                static_cast<double>(gradTolerance));
  if (steps.getNumOccurrences() > 0 && steps == 0)
    moert::fail("option --steps: 0 steps would run nothing (without --steps "
                "the function runs once)");
  if (!metricsPath.empty() && steps == 0)
    moert::fail("option --metrics: metrics are written per training step: "
                "give --steps");
  // Called alone, the train step of a split model would update from one
  // micro-batch's share of the sums.
  if (auto microBatches =
          (*module)->getAttrOfType<IntegerAttr>(moe::kMicroBatchesAttrName);
      microBatches && entry == "train_step") {
    if (steps == 0 && !gradCheck)
      moert::fail("option --entry train_step: the model sums {} micro-batches "
                  "a step: give --steps, which runs @{} on all but the last",
                  microBatches.getInt(), moert::kMicroStepFunction);
    if (failed(requireNamedFigures(*module)))
      return 1;
  }
  // An empty name would read as the option not given.
  for (const cl::opt<std::string> *option :
       {&paramsPath, &initFromPath, &resumePath, &inputsPath, &dataPath,
        &outputPath, &saveParamsPath, &metricsPath})
    if (option->getNumOccurrences() > 0 && option->empty())
      moert::fail("option --{} needs a file name", option->ArgStr.str());
  if (gradCheck)
    for (const cl::Option *option : std::initializer_list<const cl::Option *>{
             &steps, &metricsPath, &outputPath, &saveParamsPath})
      if (option->getNumOccurrences() > 0)
        moert::fail("option --{}: --grad-check checks the gradients once "
                    "and writes no files: drop --{}",
                    option->ArgStr.str(), option->ArgStr.str());
  if (!outputPath.empty() && steps > 0)
    moert::fail("option --output: it writes the results of one run; with "
                "--steps, write the trained globals with --save-params");
  moert::requireDistinctFiles({{"--output", outputPath},
                               {"--save-params", saveParamsPath},
                               {"--metrics", metricsPath}},
                              {{"the model", modelPath},
                               {"--data", dataPath},
                               {"--inputs", inputsPath},
                               {"--params", paramsPath},
                               {"--init-from", initFromPath}});
  // Opened (and checked) before the run, which may take long.
  std::optional<moert::MetricsLog> metrics;
  if (!metricsPath.empty())
    metrics.emplace(metricsPath);
  // Output files are checked before the run, which may take long.
  for (const std::string &path :
       {std::string(outputPath), std::string(saveParamsPath)}) {
    if (path.empty())
      continue;
    StringRef folder = llvm::sys::path::parent_path(path);
    if (!folder.empty() && !llvm::sys::fs::is_directory(folder))
      moert::fail("{}: {} {}", path, folder.str(),
                  llvm::sys::fs::exists(folder) ? "is not a folder"
                                                : "does not exist");
    moert::requireReplaceableSafetensors(path);
  }
  if (!initFromPath.empty() && !paramsPath.empty()) {
    llvm::errs() << "moe-run: error: --init-from (a dense checkpoint to "
                    "upcycle) and --params (this model's weights) exclude "
                    "each other\n";
    return 1;
  }
  // A checkpoint to go on from holds the weights, the seed and the data's
  // position: another source of any of them would contradict it.
  moert::RunPosition start{0, dataSeed, 0};
  std::optional<moert::CheckpointRun> checkpoint;
  if (!resumePath.empty()) {
    for (const cl::Option *option : std::initializer_list<const cl::Option *>{
             &paramsPath, &initFromPath, &seed, &dataSeed})
      if (option->getNumOccurrences() > 0)
        moert::fail("option --resume: the checkpoint {} gives what --{} "
                    "would: give one of them",
                    static_cast<std::string>(resumePath), option->ArgStr.str());
    // The header alone: the weights are read once, below.
    checkpoint = moert::parseCheckpointRun(
        resumePath, moert::readSafetensorsMetadata(resumePath));
    if (auto config =
            (*module)->getAttrOfType<StringAttr>(moe::kConfigAttrName)) {
      moert::ModelConfigText mine{config.str(), moe::canonicalConfigOf(config)};
      moert::requireCheckpointConfig(resumePath, *checkpoint, mine,
                                     "a model imported from its config",
                                     "read its weights with --params");
      // As the binaries say it: the steps replayed are this model's.
      if (std::string changes =
              moert::resumableChanges(resumePath, *checkpoint, mine,
                                      moe::adaptiveAuxCoefficients(*module));
          !changes.empty())
        llvm::errs() << fmt::format(
            "moe-run: note: {} was trained with another config than this "
            "model's, which these steps go on with: {}\n",
            static_cast<std::string>(resumePath), changes);
    }
    start = checkpoint->position;
  }
  std::string weightsPath = resumePath.empty() ? paramsPath : resumePath;
  // The gradient function is added once, before any rank runs.
  if (gradCheck && ranks > 1 &&
      failed(moe::addGradientFunction(*module, gradientCheckOptions(func))))
    return 1;

  if (!inputsPath.empty())
    requireInputsUsed(*module, func);
  // Files are read (and checksummed) once; the ranks share them, read
  // only.
  std::optional<moert::WeightSource> params, dense;
  if (!weightsPath.empty()) {
    params.emplace(weightsPath);
    if (std::string note = params->predictionLayersNote(); !note.empty())
      llvm::errs() << "moe-run: " << note;
  }
  if (checkpoint) {
    if (failed(moe::requireCheckpointState(*module, *params, *checkpoint)))
      return 1;
    if (std::string changes =
            moe::checkpointStateChanges(*module, *params, *checkpoint);
        !changes.empty())
      llvm::errs() << fmt::format(
          "moe-run: note: {} was trained with other globals than this "
          "model's, which these steps go on with: {}\n",
          static_cast<std::string>(resumePath), changes);
  }
  if (!initFromPath.empty())
    dense.emplace(initFromPath);

  /// Runs rank `rank` of the group (`communicator` null when alone).
  auto runRank = [&](int64_t rank, moe::ref::Communicator *communicator) {
    moe::Evaluator evaluator(*module);
    evaluator.setCommunicator(communicator);
    uint64_t initSeed = resumePath.empty() ? uint64_t(seed) : start.seed;
    if (failed(
            evaluator.initializeGlobals(initSeed, params ? &*params : nullptr)))
      return 1;
    if (params && failed(evaluator.loadGlobals(*params)))
      return 1;
    if (dense && failed(evaluator.upcycleGlobals(*dense, seed)))
      return 1;
    ArgumentSource source(func, ranks, rank, start);
    if (gradCheck)
      return runGradientCheck(*module, evaluator, func, source, communicator);
    bool primary = rank == 0;
    int status = steps > 0 ? train(evaluator, func, source, primary,
                                   static_cast<uint64_t>(start.step) + 1,
                                   primary && metrics ? &*metrics : nullptr)
                           : runOnce(evaluator, func, source, primary);
    if (status == 0 && !saveParamsPath.empty()) {
      // Every rank gives its parts of the sharded globals; rank 0 writes.
      llvm::StringMap<Tensor> whole = evaluator.wholeGlobals();
      if (primary)
        moe::Evaluator::writeGlobals(saveParamsPath, whole);
    }
    return status;
  };
  if (ranks == 1)
    return runRank(0, nullptr);

  moe::ref::ThreadGroup group(ranks);
  std::vector<std::string> errors(ranks);
  std::atomic<int64_t> firstFailed{-1};
  // A rank that stops early would leave the others waiting: they stop too,
  // and the first rank that failed says why.
  auto stopAll = [&](int64_t failedRank) {
    int64_t none = -1;
    firstFailed.compare_exchange_strong(none, failedRank);
    group.abort();
  };
  auto runThread = [&](int64_t rank) {
    int status = 1;
    try {
      status = runRank(rank, &group.communicator(rank));
    } catch (const std::bad_alloc &) {
      errors[rank] = moert::kOutOfMemory;
    } catch (const std::exception &error) {
      errors[rank] = error.what();
    }
    if (status != 0)
      stopAll(rank);
  };
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < ranks; ++rank) {
    try {
      threads.emplace_back(runThread, rank);
    } catch (const std::system_error &error) {
      errors[rank] = fmt::format("cannot start its thread: {}", error.what());
      stopAll(rank);
      break;
    }
  }
  for (std::thread &thread : threads)
    thread.join();
  int64_t failed = firstFailed;
  if (failed < 0)
    return 0;
  if (!errors[failed].empty())
    llvm::errs() << "moe-run: error: rank " << failed << ": " << errors[failed]
                 << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  moe::initToolFiles("moe-run");
  // The interpreter's tensors may not fit in memory: an allocation that
  // fails throws std::bad_alloc, reported with the global at fault,
  // instead of LLVM's handler aborting.
  std::set_new_handler(nullptr);
  moe::parseToolCommandLine(argc, argv, toolOptions,
                            "moe reference interpreter\n");
  return moe::runTool([] {
    DialectRegistry registry;
    moe::registerAllDialects(registry);
    // The ranks are the interpreter's threads; MLIR's pool would only
    // verify a few functions in parallel, and aborts where no thread can
    // start, before a rank could say so.
    MLIRContext context(registry, MLIRContext::Threading::DISABLED);
    return run(context);
  });
}
