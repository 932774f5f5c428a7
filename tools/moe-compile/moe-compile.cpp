//===- moe-compile.cpp - a model to a training binary in one command ------===//
//
// config.json (or moe-dialect .mlir) -> moe-import -> the train pipeline
// (buildTrainPipeline) -> the target's code-generation pipeline
// (buildCodegenPipeline) -> C++ for the CPU or CUDA C++ for NVIDIA GPUs ->
// the host C++ compiler or nvcc, linking the target's runtime and the
// training driver. The CMake function moe_add_training_binary uses it for
// the source only, so both share this pipeline.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/InitAllDialects.h"
#include "moe/Pipelines/Pipelines.h"
#include "moe/Support/ChildProcessGroup.h"
#include "moe/Support/ParseModule.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolDiagnostics.h"
#include "moe/Support/ToolFiles.h"
#include "moe/Target/Translations.h"
#include "moe/Transforms/PassOrder.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "moert/AtomicFile.h"
#include "moert/Error.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/SourceMgr.h"

#include <fmt/format.h>

#include <optional>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory toolOptions("moe-compile options");

static cl::opt<std::string>
    inputPath(cl::cat(toolOptions), cl::Positional, cl::Required,
              cl::desc("<config.json | model folder | model.mlir>"));
static cl::opt<std::string>
    outputPath(cl::cat(toolOptions), "o",
               cl::desc("Training binary to write (without it, only "
                        "--emit-cpp)"),
               cl::value_desc("file"));
/// --optimizer's help, with moe-optimizer's defaults as its pass has them.
static const std::string optimizerHelp = [] {
  moe::OptimizerOptions defaults;
  return fmt::format("moe-optimizer options, \"key=value ...\"; by default "
                     "lr={} min-lr={} warmup-steps={} decay-steps={} "
                     "lr-decay={} beta1={} beta2={} eps={} weight-decay={} "
                     "max-grad-norm={}",
                     defaults.maxLr, defaults.minLr, defaults.warmupSteps,
                     defaults.decaySteps, defaults.lrDecay, defaults.beta1,
                     defaults.beta2, defaults.epsilon, defaults.weightDecay,
                     defaults.maxGradNorm);
}();
static cl::opt<std::string> optimizerOptions(cl::cat(toolOptions), "optimizer",
                                             cl::init(""),
                                             cl::desc(optimizerHelp));
static cl::opt<bool> recompute(cl::cat(toolOptions), "recompute",
                               cl::desc("Recompute each layer's forward in "
                                        "the backward pass"));
static cl::opt<double>
    gateNormLambda(cl::cat(toolOptions), "gate-norm",
                   cl::desc("Gating logit normalization with this lambda for "
                            "every layer (0: off; default: as the model says)"),
                   cl::value_desc("lambda"), cl::init(-1.0));
static cl::opt<std::string> adaptiveAux(
    cl::cat(toolOptions), "adaptive-aux", cl::ValueOptional,
    cl::desc("Adaptive aux-loss coefficients (moe-adaptive-aux), with its "
             "options, e.g. \"xi=0.2 alpha-max=0.01 beta=0.99\""));
static cl::opt<double> expertBiasRate(
    cl::cat(toolOptions), "expert-bias-rate",
    cl::init(moe::ExpertBiasOptions().rate),
    cl::desc("How far each step moves the expert biases of a model with "
             "them (moe_router_enable_expert_bias; DeepSeek-V3's gamma, "
             "moe-expert-bias; 0 keeps them fixed)"));
static cl::opt<int64_t> expertParallel(
    cl::cat(toolOptions), "expert-parallel", cl::init(1),
    cl::desc("Ranks to split the experts and the batch over: the binary "
             "runs under mpirun -np P"));
static cl::opt<int64_t> expertRanks(
    cl::cat(toolOptions), "expert-ranks", cl::init(0),
    cl::desc("Of the --expert-parallel ranks, how many share each layer's "
             "experts (dividing them; default: all): groups of that many "
             "consecutive ranks each hold every expert, as Megatron-LM's "
             "--expert-model-parallel-size; 1 is data parallelism"));
static cl::opt<bool> distributedOptimizer(
    cl::cat(toolOptions), "distributed-optimizer",
    cl::desc("Split each parameter's Adam moments over the ranks that hold "
             "copies of it (Megatron-LM's distributed optimizer, ZeRO-1): "
             "reduce-scattered gradients, all-gathered parameters"));
static cl::opt<int64_t> microBatches(
    cl::cat(toolOptions), "micro-batches", cl::init(1),
    cl::desc("Batches of --batch-size sequences per optimizer step "
             "(gradient accumulation): activations take one batch's "
             "memory"));
static cl::opt<std::string>
    precision(cl::cat(toolOptions), "precision", cl::init("f32"),
              cl::desc("GEMM precision: f32, or bf16 (bf16 operands, f32 "
                       "accumulation, master weights and optimizer state)"));
static cl::opt<std::string> weightCopies(
    cl::cat(toolOptions), "bf16-weight-copies",
    cl::desc("bf16 copies of the weights: per-gemm (one before each "
             "GEMM), per-step (one shared by the step's GEMMs: 2 bytes a "
             "parameter more memory, less traffic; the default for cuda) or "
             "per-expert (none of the experts' weights, which the CPU "
             "kernels round as they read them; per-gemm for the others; the "
             "default for cpu)"),
    cl::value_desc("per-gemm|per-step|per-expert"));
static cl::opt<int64_t> batchSize(cl::cat(toolOptions), "batch-size",
                                  cl::init(0),
                                  cl::desc("Override moe_batch_size"));
static cl::opt<int64_t> seqLen(cl::cat(toolOptions), "seq-len", cl::init(0),
                               cl::desc("Override moe_seq_len"));
static cl::opt<std::string>
    targetName(cl::cat(toolOptions), "target", cl::init("cpu"),
               cl::desc("What the binary runs on: cpu (C++ with OpenMP and "
                        "oneDNN) or cuda (CUDA C++ for NVIDIA GPUs: SASS for "
                        "sm_80 and sm_90a, PTX for later GPUs)"),
               cl::value_desc("cpu|cuda"));
static cl::opt<std::string>
    emitCppPath(cl::cat(toolOptions), "emit-cpp",
                cl::desc("Also keep the generated source (C++, or CUDA C++ "
                         "for --target cuda) here"),
                cl::value_desc("file"));
static cl::opt<std::string>
    modelName(cl::cat(toolOptions), "model-name",
              cl::desc("Model name (default: output name)"));
static cl::opt<bool>
    profile(cl::cat(toolOptions), "profile",
            cl::desc("Time every kernel call: the binary prints where its "
                     "steps' time goes, per kernel and per call site"));
static cl::opt<std::string> cxx(cl::cat(toolOptions), "cxx",
                                cl::init(MOE_CXX_COMPILER),
                                cl::desc("C++ compiler to build with"));

/// A file that a signal ending the process removes, for as long as this
/// lives (LLVM's list would otherwise keep its name after it is gone).
class RemovedOnSignal {
public:
  explicit RemovedOnSignal(std::string path) : path(std::move(path)) {
    llvm::sys::RemoveFileOnSignal(this->path);
  }
  RemovedOnSignal(const RemovedOnSignal &) = delete;
  RemovedOnSignal &operator=(const RemovedOnSignal &) = delete;
  ~RemovedOnSignal() { llvm::sys::DontRemoveFileOnSignal(path); }

private:
  std::string path;
};

static int fail(const llvm::Twine &message) {
  llvm::errs() << "moe-compile: error: " << message << "\n";
  return 1;
}

/// The command compiling generated `source` into `output` for the target.
static SmallVector<std::string> compileCommand(bool cuda, StringRef source,
                                               StringRef output) {
  auto split = [](StringRef text, char separator,
                  SmallVector<std::string> &into) {
    SmallVector<StringRef> parts;
    text.split(parts, separator, -1, false);
    for (StringRef part : parts)
      into.push_back(part.str());
  };
  SmallVector<std::string> command;
  if (!cuda) {
    command = {cxx,
               "-O2",
               "-std=c++17",
               "-fopenmp",
               "-fno-math-errno",
               "-I" MOE_RUNTIME_INCLUDE_DIR,
               source.str(),
               "-o",
               output.str()};
    split(MOE_RUNTIME_LIBRARIES, ',', command);
    split(MOE_RUNTIME_FLAGS, ' ', command);
    return command;
  }
#ifdef MOE_CUDA_COMPILER
  // -lineinfo: source lines for compute-sanitizer and ncu, the same code.
  // -fmad=false: the fused loops round each product before a sum, as the
  // C++ target's do (baseline x86-64 has no FMA to contract into).
  command = {MOE_CUDA_COMPILER, "-O2", "-std=c++17", "-lineinfo",
             "-fmad=false"};
  // The runtime's architectures (CMAKE_CUDA_ARCHITECTURES).
  SmallVector<std::string> gencodes;
  split(MOE_CUDA_GENCODES, ' ', gencodes);
  for (std::string &gencode : gencodes)
    command.append({"-gencode", gencode});
  command.append(
      {"-I" MOE_RUNTIME_INCLUDE_DIR, source.str(), "-o", output.str()});
  // nvcc takes libraries only by their plain suffix (.a, .so): a versioned
  // shared library goes to the host linker by name.
  SmallVector<std::string> libraries;
  split(MOE_CUDA_RUNTIME_LIBRARIES, ',', libraries);
  for (StringRef library : libraries) {
    if (library.ends_with(".a") || library.ends_with(".so")) {
      command.push_back(library.str());
      continue;
    }
    command.push_back(("-L" + llvm::sys::path::parent_path(library)).str());
    command.push_back(("-l:" + llvm::sys::path::filename(library)).str());
  }
#endif
  return command;
}

/// The option names of a pass-option text such as "lr=1e-3
/// no-decay={bias,norm}": what precedes the '=' of each piece between
/// whitespace outside quotes and brackets.
static SmallVector<StringRef> optionNames(StringRef text) {
  SmallVector<StringRef> names;
  size_t start = 0;
  auto addPiece = [&](size_t end) {
    StringRef piece = text.slice(start, end).trim();
    if (!piece.empty())
      names.push_back(piece.split('=').first);
    start = end + 1;
  };
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote)
      quote = c == quote ? 0 : quote;
    else if (c == '"' || c == '\'')
      quote = c;
    else if (c == '{' || c == '[' || c == '(')
      ++depth;
    else if (c == '}' || c == ']' || c == ')')
      --depth;
    else if (depth == 0 && llvm::isSpace(c))
      addPiece(i);
  }
  addPiece(text.size());
  return names;
}

/// Checks the text of `--flag`, which the train pipeline parses with its
/// other options: it may name only options of `pass` (the pipeline's
/// others have flags of their own, which would override them), each once
/// (a repeated option would keep its last value).
static bool checkPassOptions(StringRef flag, StringRef text,
                             std::unique_ptr<Pass> pass) {
  auto refuse = [&](const Twine &problem) {
    fail("bad --" + flag + " options '" + text + "': " + problem);
    return false;
  };
  llvm::StringSet<> seen;
  for (StringRef name : optionNames(text)) {
    if (!seen.insert(name).second)
      return refuse("'" + name + "' is given twice");
    // The pass's, but a binary's step is always @train_step.
    if (name == "function")
      return refuse("moe-compile's binaries train @train_step; 'function' "
                    "is for moe-opt");
  }
  // A bad value's message is already printed; an unknown name's comes here.
  return succeeded(pass->initializeOptions(text, [&](const Twine &problem) {
    std::string message = problem.str();
    StringRef unknown = StringRef(message).trim();
    unknown.consume_front("<Pass-Options-Parser>: ");
    if (unknown.empty())
      fail("bad --" + flag + " options '" + text + "'");
    else
      refuse(unknown + "; --" + flag + " takes " + pass->getArgument() +
             "'s options only");
    return failure();
  }));
}

/// Everything after option parsing.
static int run() {
  inputPath.setValue(moe::modelInputPath(inputPath));
  if (outputPath.empty() && emitCppPath.empty())
    return fail("nothing to do: give -o BINARY and/or --emit-cpp FILE");
  if (targetName != "cpu" && targetName != "cuda")
    return fail("unknown --target '" + targetName + "' (known: cpu, cuda)");
  bool cuda = targetName == "cuda";
  moe::requireOutputsApart({{"-o", outputPath}, {"--emit-cpp", emitCppPath}},
                           {"the input", inputPath});
  // Bad paths fail before the compilation, which takes a while. The
  // compiler writes beside the binary, which a failed build leaves as it
  // was.
  std::optional<moert::AtomicFile> binary;
  if (!emitCppPath.empty())
    moe::requireReplaceableOutput(emitCppPath, moe::OutputKind::Text,
                                  "--emit-cpp");
  if (!outputPath.empty()) {
    moe::requireReplaceableOutput(outputPath, moe::OutputKind::Executable,
                                  "-o");
    // Interrupted (Ctrl-C), the compile leaves no temporary behind
    // (initToolFiles has AtomicFile's temporaries removed on a signal).
    binary.emplace(outputPath, 0777);
    if (!cuda) {
      // A name is looked up on PATH; a path is taken as it is.
      llvm::ErrorOr<std::string> compiler = llvm::sys::findProgramByName(cxx);
      if (!compiler || !llvm::sys::fs::can_execute(*compiler))
        return fail("--cxx " + cxx + ": no such program");
      cxx = *compiler;
    }
  }
  if (precision != "f32" && precision != "bf16")
    return fail("unknown --precision '" + precision + "' (known: f32, bf16)");
  // The pipeline reads a negative lambda as "as the model says".
  if (gateNormLambda.getNumOccurrences() > 0 && gateNormLambda < 0)
    return fail(fmt::format("--gate-norm {}: lambda must not be negative (0 "
                            "turns the normalization off)",
                            gateNormLambda.getValue()));
  // moe-mixed-precision checks the value; without bf16 it does not run.
  if (weightCopies.getNumOccurrences() > 0 && precision != "bf16")
    return fail("--bf16-weight-copies needs --precision bf16");
  if (expertParallel < 1)
    return fail(fmt::format("--expert-parallel {}: must be at least 1 (1, the "
                            "default, is one process)",
                            expertParallel.getValue()));
  if (expertRanks.getNumOccurrences() > 0 && expertParallel <= 1)
    return fail("--expert-ranks needs --expert-parallel P of 2 or more "
                "ranks");
  // 0 is the pipeline's "all ranks", which omitting the option says.
  if (expertRanks.getNumOccurrences() > 0 && expertRanks < 1)
    return fail(fmt::format("--expert-ranks {}: must be at least 1 (1 is data "
                            "parallelism; omit it for all the ranks)",
                            expertRanks.getValue()));
  if (distributedOptimizer && expertParallel <= 1)
    return fail("--distributed-optimizer needs --expert-parallel P of 2 or "
                "more ranks");
  if (cuda && cxx.getNumOccurrences() > 0)
    return fail("--cxx is the cpu target's compiler: --target cuda builds "
                "with the nvcc this moe-compile was built with");
  if (cuda && weightCopies == "per-expert")
    return fail("--bf16-weight-copies per-expert is for the CPU target, whose "
                "expert kernels round f32 weights as they read them: use "
                "per-step or per-gemm with --target cuda");
#ifndef MOE_CUDA_COMPILER
  if (cuda && !outputPath.empty())
    return fail("this moe-compile was built without the CUDA toolkit: "
                "--target cuda can write the source (--emit-cpp FILE), but "
                "not build a binary (rebuild with the toolkit installed)");
#endif
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  moe::ToolDiagnosticHandler diagnostics(sourceMgr, &context, inputPath);

  OwningOpRef<ModuleOp> module;
  if (StringRef(inputPath).ends_with(".json")) {
    std::unique_ptr<llvm::MemoryBuffer> input = moe::readToolInput(inputPath);
    llvm::Expected<OwningOpRef<ModuleOp>> imported = moe::importModelConfig(
        context, input->getBuffer(), inputPath,
        {Float32Type::get(&context),
         batchSize.getNumOccurrences() ? std::optional<int64_t>(batchSize)
                                       : std::nullopt,
         seqLen.getNumOccurrences() ? std::optional<int64_t>(seqLen)
                                    : std::nullopt});
    if (!imported)
      return fail(llvm::toString(imported.takeError()));
    module = std::move(*imported);
  } else {
    // An imported model's shapes are in its IR.
    for (const cl::Option *option : {&batchSize, &seqLen})
      if (option->getNumOccurrences() > 0)
        return fail("--" + option->ArgStr +
                    " applies to a config.json; the shapes of " + inputPath +
                    " are those moe-import gave it");
    sourceMgr.AddNewSourceBuffer(moe::readToolInput(inputPath), llvm::SMLoc());
    module = moe::parseAndVerifyModule(sourceMgr, &context);
    if (!module)
      return 1;
    // moe-compile runs the train pipeline and code generation itself: their
    // passes would refuse their own output in their terms, not the user's.
    if (module->lookupSymbol("train_step") || moe::hasMemoryPlan(*module))
      return fail(inputPath +
                  ": has a train step already (moe-opt's train pipeline or "
                  "code generation made it): give moe-compile the model as "
                  "moe-import writes it");
    // The training binary feeds the step windows of tokens.
    auto forward = module->lookupSymbol<func::FuncOp>("forward");
    auto window = [&](unsigned index, StringRef name) {
      auto type =
          dyn_cast<RankedTensorType>(forward.getFunctionType().getInput(index));
      return type && type.getRank() == 2 &&
             forward.getArgAttr(index, moe::kInputAttrName) ==
                 StringAttr::get(&context, name);
    };
    if (forward && !(forward.getNumArguments() == 2 && window(0, "input_ids") &&
                     window(1, "labels")))
      return fail(inputPath +
                  ": @forward must take input_ids and labels, [batch, seq] "
                  "each, as moe-import writes it: the training binary feeds "
                  "it windows of tokens");
  }

  // Each rank takes its part of the step's batch: said in the options'
  // terms, not as the partitioner's argument type.
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  if (expertParallel > 1 && forward && forward.getNumArguments() > 0) {
    auto ids =
        dyn_cast<RankedTensorType>(forward.getFunctionType().getInput(0));
    if (ids && ids.hasStaticShape() && ids.getRank() > 0 &&
        ids.getDimSize(0) % expertParallel != 0)
      return fail(llvm::formatv(
          "--expert-parallel {0} splits each batch over {0} ranks, but a "
          "batch holds {1} sequences (moe_batch_size, or --batch-size): give "
          "a multiple of {0}",
          expertParallel.getValue(), ids.getDimSize(0)));
  }

  // The optimizer's and adaptive-aux's option texts use the passes' option
  // names, which are also the train pipeline's.
  if (!checkPassOptions("optimizer", optimizerOptions,
                        moe::createOptimizer()) ||
      !checkPassOptions("adaptive-aux", adaptiveAux, moe::createAdaptiveAux()))
    return 1;
  moe::TrainPipelineOptions train;
  std::string trainOptions = optimizerOptions;
  if (adaptiveAux.getNumOccurrences() > 0)
    trainOptions += " adaptive-aux=true " + adaptiveAux;
  if (failed(train.parseFromString(trainOptions)))
    return fail("bad --optimizer or --adaptive-aux options '" + trainOptions +
                "'");
  if (expertBiasRate.getNumOccurrences() > 0 &&
      !module
           ->walk([](moe::GateOp gate) {
             return gate.getBias() ? WalkResult::interrupt()
                                   : WalkResult::advance();
           })
           .wasInterrupted())
    return fail("--expert-bias-rate: the model has no expert biases to move "
                "(its config sets no 'moe_router_enable_expert_bias')");
  train.expertBiasRate = expertBiasRate.getValue();
  train.gateNorm = gateNormLambda.getValue();
  train.recompute = recompute.getValue();
  train.expertParallel = expertParallel.getValue();
  train.expertRanks = expertRanks.getValue();
  train.microBatches = microBatches.getValue();
  train.distributedOptimizer = distributedOptimizer.getValue();
  train.precision = precision.getValue();
  train.weightCopies = weightCopies.getNumOccurrences() > 0
                           ? weightCopies.getValue()
                           : std::string(cuda ? "per-step" : "per-expert");
  PassManager pm = PassManager::on<ModuleOp>(&context);
  moe::buildTrainPipeline(pm, train);
  moe::buildCodegenPipeline(pm, targetName);
  moe::registerTranslations();
  const moe::Translation *translation =
      moe::lookupTranslation(cuda ? "cuda" : "cpp");
  if (failed(pm.run(*module)))
    return 1;

  std::string source = emitCppPath;
  // A source of our own goes when moe-compile returns or is stopped by a
  // signal.
  std::optional<llvm::FileRemover> sourceRemover;
  std::optional<RemovedOnSignal> sourceOnSignal;
  if (source.empty()) {
    llvm::SmallString<128> temporary;
    if (std::error_code error = llvm::sys::fs::createTemporaryFile(
            "moe-compile", cuda ? "cu" : "cpp", temporary)) {
      llvm::SmallString<128> folder;
      llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, folder);
      return fail(llvm::formatv("cannot create the generated source's "
                                "temporary file in {0} (TMPDIR): {1}",
                                folder, error.message())
                      .str());
    }
    source = temporary.str().str();
    sourceRemover.emplace(source);
    sourceOnSignal.emplace(source);
  }
  moe::TranslateOptions translateOptions;
  translateOptions.modelName =
      !modelName.empty()   ? modelName.getValue()
      : outputPath.empty() ? llvm::sys::path::stem(emitCppPath).str()
                           : llvm::sys::path::filename(outputPath).str();
  translateOptions.profile = profile;
  if (!moe::writeToolOutput(
          source,
          [&](llvm::raw_ostream &os) {
            return succeeded(
                translation->translate(*module, os, translateOptions));
          },
          "--emit-cpp"))
    return 1;
  if (outputPath.empty())
    return 0;

  SmallVector<std::string> command =
      compileCommand(cuda, source, binary->temporary());
  // Stopped, moe-compile stops the compiler and its linker before removing
  // the temporary they write.
  std::string error;
  int status = moe::runInOwnProcessGroup(command, error);
  // -1: it did not run; -2: a signal ended it.
  if (status == -1)
    return fail("cannot run " + command.front() + ": " + error);
  if (status != 0)
    return fail(Twine("compiling the generated ") + (cuda ? "CUDA" : "C++") +
                " failed: " + command.front() +
                (status == -2 ? " was killed by a signal"
                              : " exited with status " + Twine(status)) +
                (error.empty() ? "" : " (" + error + ")"));
  binary->commit();
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  moe::initToolFiles("moe-compile");
  moe::parseToolCommandLine(argc, argv, toolOptions,
                            "moe model to training binary\n");
  return moe::runTool(run);
}
