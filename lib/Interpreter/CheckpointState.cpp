//===- CheckpointState.cpp - a binary's checkpoint as moe-run resumes it --===//

#include "moe/Interpreter/CheckpointState.h"
#include "moe/MoeDialect.h"
#include "moert/Error.h"
#include "moert/StateNames.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"

#include <cstring>

using namespace mlir;

namespace {
/// The names of `module`'s config constants and of the other globals a
/// checkpoint holds.
std::pair<std::vector<std::string>, std::vector<std::string>>
constantsAndTrained(ModuleOp module) {
  llvm::DenseSet<StringAttr> constants = moe::configConstantGlobals(module);
  std::pair<std::vector<std::string>, std::vector<std::string>> names;
  for (auto global : module.getOps<ml_program::GlobalOp>())
    if (constants.contains(global.getSymNameAttr()))
      names.first.push_back(global.getSymName().str());
    else if (!global->hasAttr(moe::kTransientAttrName))
      names.second.push_back(global.getSymName().str());
  return names;
}
} // namespace

LogicalResult moe::requireCheckpointState(ModuleOp module,
                                          const moert::WeightSource &source,
                                          const moert::CheckpointRun &run) {
  // Every tensor by name, as a binary's resume: readers of weights pass over
  // training state their model lacks (Adam's moments, loss coefficients), a
  // resume never.
  for (const std::string &name : source.names())
    if (auto global = module.lookupSymbol<ml_program::GlobalOp>(name);
        !global || global->hasAttr(kTransientAttrName))
      return module.emitError() << source.getPath() << ": tensor '" << name
                                << "' is not part of the model";
  for (const std::string &name : constantsAndTrained(module).second) {
    Operation *global = module.lookupSymbol(name);
    // Only training state that the checkpoint's model held constant may be
    // missing, never a weight.
    if (!source.contains(name) &&
        !(!global->hasAttr(kTrainableAttrName) && run.configConstants &&
          run.configConstants->count(name)))
      return global->emitError()
             << source.getPath() << ": tensor '" << name << "' is missing";
  }
  std::string stepName(moert::kOptimizerStepGlobal);
  if (!source.contains(stepName))
    return success();
  try {
    moert::OwnedTensor step = source.get(stepName, moert::DType::I64);
    // Another shape is loadGlobals' to name.
    if (!step.shape.empty())
      return success();
    int64_t counted;
    std::memcpy(&counted, step.data.data(), sizeof(counted));
    if (counted != run.position.step)
      return module.emitError()
             << source.getPath() << ": tensor '" << stepName << "' counts "
             << counted << " steps, but the metadata says step "
             << run.position.step;
  } catch (const moert::Error &error) {
    return module.emitError() << error.what();
  }
  return success();
}

std::string moe::checkpointStateChanges(ModuleOp module,
                                        const moert::WeightSource &source,
                                        const moert::CheckpointRun &run) {
  auto [constants, trained] = constantsAndTrained(module);
  return moert::stateOriginChanges(
      run, constants, trained,
      [&](const std::string &name) { return source.contains(name); });
}

bool moe::adaptiveAuxCoefficients(ModuleOp module) {
  llvm::DenseSet<StringAttr> constants = configConstantGlobals(module);
  return llvm::any_of(module.getOps<ml_program::GlobalOp>(),
                      [&](ml_program::GlobalOp global) {
                        return moert::isAuxLossCoeff(global.getSymName()) &&
                               !constants.contains(global.getSymNameAttr());
                      });
}
