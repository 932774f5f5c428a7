//===- moe-opt.cpp - the moe compiler driver ------------------------------===//
//
// mlir-opt with the moe dialect, passes and named pipelines
// (--moe-train-pipeline, --moe-cpu-codegen): parses, verifies, runs the pass
// pipeline given on the command line and prints the result.
//
//===----------------------------------------------------------------------===//

#include "moe/InitAllDialects.h"
#include "moe/Pipelines/Pipelines.h"
#include "moe/Transforms/Passes.h"
#include "moert/Error.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/CommandLine.h"

int main(int argc, char **argv) {
  // Only MLIR's and our options in --help: every option registered so far
  // is one of LLVM's own (its code generators', its optimizers'), while
  // MlirOptMain registers its options and the passes' when it runs.
  static llvm::cl::OptionCategory optOptions("moe-opt options");
  llvm::cl::HideUnrelatedOptions(optOptions);
  mlir::DialectRegistry registry;
  mlir::moe::registerAllDialects(registry);
  mlir::moe::registerMoePasses();
  mlir::moe::registerMoePipelines();
  mlir::registerTransformsPasses();
  return moert::exitOnErrors("moe-opt", [&] {
    return mlir::asMainReturnCode(
        mlir::MlirOptMain(argc, argv, "moe compiler driver\n", registry));
  });
}
