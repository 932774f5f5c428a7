//===- FuzzModel.h - a fuzz input as the model a tool takes -----*- C++ -*-===//
//
// The fuzzers' MLIR context; the fuzzers of the compiler and the
// interpreter read an input as moe-compile does: a config.json (text that
// starts with '{'), imported in small windows of tokens, or IR text,
// parsed and verified as every tool parses it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_FUZZ_FUZZMODEL_H
#define MOE_TEST_FUZZ_FUZZMODEL_H

#include "moe/Frontend/ModelBuilder.h"
#include "moe/InitAllDialects.h"
#include "moe/Support/ParseModule.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

namespace mlir::moe::fuzz {

/// The context of every input: every dialect loaded, diagnostics dropped.
inline mlir::MLIRContext &fuzzContext() {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    mlir::moe::registerAllDialects(registry);
    auto *context = new mlir::MLIRContext(registry);
    context->loadAllAvailableDialects();
    context->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
    return context;
  }();
  return *context;
}

/// The model of `text`, or null where the importer or the parser and the
/// verifiers refuse it.
inline mlir::OwningOpRef<mlir::ModuleOp> fuzzModel(llvm::StringRef text) {
  mlir::MLIRContext &context = fuzzContext();
  if (text.ltrim().starts_with("{")) {
    mlir::moe::ImportOptions options{mlir::Float32Type::get(&context), 2, 4};
    llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>> imported =
        mlir::moe::importModelConfig(context, text, "fuzz.json", options);
    if (!imported) {
      llvm::consumeError(imported.takeError());
      return nullptr;
    }
    return std::move(*imported);
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text),
                               llvm::SMLoc());
  return mlir::moe::parseAndVerifyModule(sourceMgr, &context);
}

} // namespace mlir::moe::fuzz

#endif // MOE_TEST_FUZZ_FUZZMODEL_H
