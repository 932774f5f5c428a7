//===- ConfigFuzzer.cpp - config.json import ------------------------------===//
//
// Any text either imports into a model that verifies or gives an error; the
// importer never crashes or builds tensor types whose sizes overflow.
//
//===----------------------------------------------------------------------===//

#include "moe/Frontend/ModelBuilder.h"
#include "moe/InitAllDialects.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    mlir::moe::registerAllDialects(registry);
    auto *context = new mlir::MLIRContext(registry);
    context->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
    return context;
  }();
  mlir::moe::ImportOptions options;
  options.elementType = mlir::Float32Type::get(context);
  options.batchSize = 1;
  options.seqLen = 2;
  llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>> module =
      mlir::moe::importModelConfig(
          *context, llvm::StringRef(reinterpret_cast<const char *>(data), size),
          "fuzz.json", options);
  if (!module)
    llvm::consumeError(module.takeError());
  return 0;
}
