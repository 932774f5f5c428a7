//===- moe-opt.cpp - the moe compiler driver ------------------------------===//
//
// mlir-opt with the moe dialect, passes and named pipelines
// (--moe-train-pipeline, --moe-cpu-codegen, --moe-cuda-codegen): parses,
// verifies, runs the pass pipeline given on the command line and prints the
// result.
//
//===----------------------------------------------------------------------===//

#include "moe/InitAllDialects.h"
#include "moe/MoeDialect.h"
#include "moe/Pipelines/Pipelines.h"
#include "moe/Support/ParseModule.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolDiagnostics.h"
#include "moe/Support/ToolFiles.h"
#include "moe/Transforms/Passes.h"
#include "moert/Error.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Process.h"

#include <cstdio>
#include <string>
#include <vector>

/// The input, which diagnostics without a file position are about, and its
/// contents, which MlirOptMain holds while diagnostics are printed.
static std::string diagnosticsInput;
static const llvm::MemoryBuffer *diagnosticsBuffer = nullptr;

/// Diagnostics located by the importer's names print as the other tools
/// print them (moe/Support/ToolDiagnostics.h). MlirOptMain installs a
/// SourceMgrDiagnosticHandler for each input before parsing it; this
/// handler, added when parsing loads the moe dialect, comes before it.
static void printToolDiagnosticsFirst(mlir::MLIRContext *context,
                                      mlir::moe::MoeDialect *) {
  context->getDiagEngine().registerHandler([](mlir::Diagnostic &diagnostic) {
    return mlir::moe::printToolDiagnostic(diagnostic, diagnosticsInput,
                                          diagnosticsBuffer, llvm::errs());
  });
}

namespace {
/// MLIR 22's shard and tensor reshape verifiers crash on some malformed ops
/// (moe/Support/ParseModule.h), and MlirOptMain verifies what it parses:
/// moe-opt parses without verifying, and this pass, first in every
/// pipeline, refuses those ops, verifies, and refuses tensors too large to
/// plan, as the other tools do when they parse.
struct VerifyInput
    : mlir::PassWrapper<VerifyInput, mlir::OperationPass<mlir::ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(VerifyInput)
  llvm::StringRef getArgument() const override { return "moe-verify-input"; }
  void runOnOperation() override {
    if (failed(mlir::moe::rejectVerifierCrashes(getOperation())) ||
        failed(mlir::verify(getOperation())) ||
        failed(mlir::moe::verifyTensorSizes(getOperation())))
      return signalPassFailure();
    // Unchanged IR: the pass manager need not verify it again.
    markAllAnalysesPreserved();
  }
};
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  mlir::moe::initToolFiles("moe-opt");
  // MLIR's option parsing below puts LLVM's version printer back.
  for (int i = 1; i < argc; ++i)
    if (llvm::StringRef(argv[i]) == "--version" ||
        llvm::StringRef(argv[i]) == "-version")
      return mlir::moe::runTool([] {
        mlir::moe::printToolVersion(llvm::outs());
        return 0;
      });
  // Only MLIR's and our options in --help: every option registered so far
  // is one of LLVM's own (its code generators', its optimizers'), while
  // MLIR registers its options and the passes' below.
  static llvm::cl::OptionCategory optOptions("moe-opt options");
  llvm::cl::HideUnrelatedOptions(optOptions);
  mlir::DialectRegistry registry;
  mlir::moe::registerAllDialects(registry);
  mlir::moe::registerMoePasses();
  mlir::moe::registerMoePipelines();
  mlir::registerTransformsPasses();
  // A diagnostic does not print the operation it is about: that would be
  // the whole model for a pass's error about the module. Our default comes
  // first, so a --mlir-print-op-on-diagnostic of the user's wins.
  std::vector<char *> arguments(argv, argv + argc);
  std::string noOpPrinting = "--mlir-print-op-on-diagnostic=false";
  arguments.insert(arguments.begin() + 1, noOpPrinting.data());
  // Named, not structured bindings, which C++17 lambdas cannot capture.
  std::pair<std::string, std::string> paths = mlir::registerAndParseCLIOptions(
      static_cast<int>(arguments.size()), arguments.data(),
      "moe compiler driver\n", registry);
  const std::string &inputPath = paths.first, &outputPath = paths.second;
  // MLIR's options too: a second -o or --pass-pipeline replaced the first.
  // We give --mlir-print-op-on-diagnostic once ourselves.
  mlir::moe::rejectRepeatedOptions(
      argv[0], [&](const llvm::cl::Option &option) {
        return option.ArgStr == "mlir-print-op-on-diagnostic" ? 2u : 1u;
      });
  return mlir::moe::runTool([&] {
    mlir::MlirOptMainConfig config =
        mlir::MlirOptMainConfig::createFromCLOptions();
    // --verify-diagnostics matches MLIR's own diagnostics.
    if (!config.shouldVerifyDiagnostics()) {
      diagnosticsInput = inputPath;
      registry.addExtension(printToolDiagnosticsFirst);
    }
    // MLIR's driver lists these and reads no input.
    if (config.shouldShowDialects() || config.shouldListPasses())
      return mlir::asMainReturnCode(
          mlir::MlirOptMain(llvm::outs(), llvm::MemoryBuffer::getMemBuffer(""),
                            registry, config));
    // As mlir-opt: a terminal on stdin is usually a forgotten input file.
    if (inputPath == "-" &&
        llvm::sys::Process::FileDescriptorIsDisplayed(fileno(stdin)))
      llvm::errs() << "(processing input from stdin now, hit ctrl-c/ctrl-d to "
                      "interrupt)\n";
    std::unique_ptr<llvm::MemoryBuffer> input =
        mlir::moe::readToolInput(inputPath);
    diagnosticsBuffer = input.get();
    config.verifyOnParsing(false);
    config.setPassPipelineSetupFn([pipeline = config](mlir::PassManager &pm) {
      pm.addPass(std::make_unique<VerifyInput>());
      return pipeline.setupPassPipeline(pm);
    });
    bool succeeded =
        mlir::moe::writeToolOutput(outputPath, [&](llvm::raw_ostream &os) {
          return mlir::succeeded(
              mlir::MlirOptMain(os, std::move(input), registry, config));
        });
    return succeeded ? 0 : 1;
  });
}
