//===- moe-import.cpp - config.json to moe-dialect IR ---------------------===//
//
// Reads a Hugging Face style config.json and prints the model as verified
// moe-dialect IR (globals for every parameter, a forward function to the
// loss). Errors name the file and the key at fault.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/InitAllDialects.h"
#include "moe/Support/ToolCommandLine.h"
#include "moe/Support/ToolFiles.h"

#include "mlir/IR/MLIRContext.h"
#include "moert/Error.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory toolOptions("moe-import options");

static cl::opt<std::string> inputPath(cl::cat(toolOptions), cl::Positional,
                                      cl::Required,
                                      cl::desc("<config.json | model folder>"));
static cl::opt<std::string>
    outputPath(cl::cat(toolOptions), "o", cl::init("-"),
               cl::desc("Output file (default: stdout)"),
               cl::value_desc("file"));
static cl::opt<std::string>
    dtype(cl::cat(toolOptions), "dtype", cl::init("f32"),
          cl::desc("Element type of parameters and activations: f32 "
                   "(default) or f64"));
static cl::opt<int64_t> batchSize(cl::cat(toolOptions), "batch-size",
                                  cl::init(0),
                                  cl::desc("Override moe_batch_size"));
static cl::opt<int64_t> seqLen(cl::cat(toolOptions), "seq-len", cl::init(0),
                               cl::desc("Override moe_seq_len"));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "moe-import: error: " << message << "\n";
  return 1;
}

/// Everything after option parsing.
static int run() {
  inputPath.setValue(moe::modelInputPath(inputPath));
  moe::requireOutputsApart({{"-o", outputPath}}, {"the input", inputPath});
  std::unique_ptr<llvm::MemoryBuffer> input = moe::readToolInput(inputPath);
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry);
  moe::ImportOptions options;
  if (batchSize.getNumOccurrences())
    options.batchSize = batchSize;
  if (seqLen.getNumOccurrences())
    options.seqLen = seqLen;
  if (dtype == "f32")
    options.elementType = Float32Type::get(&context);
  else if (dtype == "f64")
    options.elementType = Float64Type::get(&context);
  else
    return fail("--dtype must be f32 or f64, got '" + dtype + "'");
  llvm::Expected<OwningOpRef<ModuleOp>> module =
      moe::importModelConfig(context, input->getBuffer(), inputPath, options);
  if (!module)
    return fail(llvm::toString(module.takeError()));

  // Locations name each op's Hugging Face module (e.g. model.layers.3.mlp);
  // passes such as moe-autodiff's recomputation read them.
  moe::writeToolOutput(outputPath, [&](llvm::raw_ostream &os) {
    (*module)->print(os, OpPrintingFlags().enableDebugInfo());
    return true;
  });
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  moe::initToolFiles("moe-import");
  moe::parseToolCommandLine(argc, argv, toolOptions,
                            "config.json to moe-dialect IR\n");
  return moe::runTool(run);
}
