//===- ConfigConstants.cpp - globals that hold a config's values ----------===//
//
// Shared by code generation, which marks them in the model ABI for the
// runtime's resume, and the interpreter, which initializes them as the
// runtime does.
//
//===----------------------------------------------------------------------===//

#include "moe/MoeDialect.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;

llvm::DenseSet<StringAttr> mlir::moe::configConstantGlobals(ModuleOp module) {
  llvm::DenseSet<StringAttr> stored;
  module.walk([&](ml_program::GlobalStoreOp store) {
    stored.insert(store.getGlobal().getRootReference());
  });
  llvm::DenseSet<StringAttr> constants;
  for (auto global : module.getOps<ml_program::GlobalOp>())
    if (global->hasAttr(kConfigConstantAttrName) &&
        !stored.contains(global.getSymNameAttr()))
      constants.insert(global.getSymNameAttr());
  return constants;
}
