//===- moe-translate.cpp - moe IR to target source ------------------------===//
//
// `moe-translate --emit=cpp model.mlir` writes the C++ of a trained model's
// functions against the model ABI; --emit takes any registered translation.
// The module must be planned (moe-plan-memory); an unplanned one is planned
// here first, for the translation's target.
//
//===----------------------------------------------------------------------===//

#include "moe/InitAllDialects.h"
#include "moe/Support/ParseModule.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolDiagnostics.h"
#include "moe/Support/ToolFiles.h"
#include "moe/Target/Translations.h"
#include "moe/Transforms/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "moert/Error.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory toolOptions("moe-translate options");

static cl::opt<std::string> inputPath(cl::cat(toolOptions), cl::Positional,
                                      cl::init("-"), cl::desc("<model.mlir>"));
static cl::opt<std::string> outputPath(cl::cat(toolOptions), "o", cl::init("-"),
                                       cl::desc("Output file"),
                                       cl::value_desc("file"));
static cl::opt<const moe::Translation *, false, moe::TranslationParser>
    emit(cl::cat(toolOptions), "emit", cl::desc("Output format (default: cpp)"),
         cl::init(nullptr));
static cl::opt<std::string> modelName(cl::cat(toolOptions), "model-name",
                                      cl::init("model"),
                                      cl::desc("Name recorded in the model"));

static cl::opt<bool> profile(cl::cat(toolOptions), "profile",
                             cl::desc("Time every kernel call (the training "
                                      "driver prints the profile)"));

/// Everything after option parsing.
static int run() {
  moe::requireOutputsApart({{"-o", outputPath}}, {"the input", inputPath});
  const moe::Translation *translation =
      emit ? emit.getValue() : moe::lookupTranslation("cpp");
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  moe::ToolDiagnosticHandler diagnostics(sourceMgr, &context, inputPath);
  sourceMgr.AddNewSourceBuffer(moe::readToolInput(inputPath), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = moe::parseAndVerifyModule(sourceMgr, &context);
  if (!module)
    return 1;
  if (module->getOps<func::FuncOp>().empty()) {
    module->emitError("the module has no functions to emit");
    return 1;
  }
  bool planned = llvm::all_of(module->getOps<func::FuncOp>(), [](auto f) {
    return f->hasAttr(moe::kArenaBytesAttrName);
  });
  if (!planned) {
    PassManager pm(&context);
    if (!module->getOperation()->hasAttr(moe::kTargetAttrName)) {
      moe::AttachTargetOptions target;
      target.targetName = translation->targetName.str();
      pm.addPass(moe::createAttachTarget(target));
    }
    pm.addPass(moe::createPlanMemory(moe::PlanMemoryOptions{/*report=*/false}));
    if (failed(pm.run(*module)))
      return 1;
  }
  moe::TranslateOptions translateOptions;
  translateOptions.modelName = modelName;
  translateOptions.profile = profile;
  bool translated =
      moe::writeToolOutput(outputPath, [&](llvm::raw_ostream &os) {
        return succeeded(translation->translate(*module, os, translateOptions));
      });
  return translated ? 0 : 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  moe::initToolFiles("moe-translate");
  moe::parseToolCommandLine(argc, argv, toolOptions,
                            "moe IR to target source\n");
  return moe::runTool(run);
}
