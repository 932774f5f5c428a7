//===- PassOrder.cpp - which passes a pass must run before ----------------===//

#include "moe/Transforms/PassOrder.h"

#include "moe/MoeDialect.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

using namespace mlir;

LogicalResult moe::requireRunsBefore(ModuleOp module, StringRef pass,
                                     ArrayRef<StringRef> later) {
  auto recorded = module->getAttrOfType<DictionaryAttr>(kTrainingAttrName);
  if (!recorded)
    return success();
  for (StringRef other : later)
    if (recorded.get(other))
      return module.emitError()
             << pass << ": runs before " << other << ", which '"
             << kTrainingAttrName << "' records as applied";
  return success();
}

LogicalResult moe::requireOptimizerNotDistributed(ModuleOp module,
                                                  StringRef pass) {
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    if (!global->hasAttr(kOptimizerPartAttrName))
      continue;
    InFlightDiagnostic error =
        global.emitError()
        << pass << ": the optimizer state is already split over the ranks (@"
        << global.getSymName() << " is a rank's part of a moment): ";
    if (pass == "moe-distributed-optimizer")
      return error << "was the pass applied twice?";
    return error << pass << " runs before moe-distributed-optimizer";
  }
  return success();
}

bool moe::hasMemoryPlan(ModuleOp module) {
  return llvm::any_of(module.getOps<FunctionOpInterface>(),
                      [](FunctionOpInterface function) {
                        return function->hasAttr(kArenaBytesAttrName);
                      });
}

LogicalResult moe::requireBeforeCodegen(ModuleOp module, StringRef pass) {
  if (!hasMemoryPlan(module))
    return success();
  return module.emitError()
         << pass << ": runs before code generation, whose memory plan ("
         << kArenaBytesAttrName << ") this module has";
}

func::FuncOp moe::trainStepToExtend(ModuleOp module, StringRef pass,
                                    StringRef functionName) {
  if (failed(requireBeforeCodegen(module, pass)))
    return {};
  auto function = module.lookupSymbol<func::FuncOp>(functionName);
  if (!function)
    module.emitError() << pass << ": no function @" << functionName
                       << " (run moe-autodiff first)";
  return function;
}
