//===- TrainingSettings.cpp - the training settings a module records ------===//

#include "moe/Transforms/TrainingSettings.h"

#include "moe/MoeDialect.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;

void mlir::moe::recordTrainingSettings(Pass &pass, ModuleOp module) {
  // printAsTextualPipeline gives "name{key=value ...}" with every option
  // (a list option's value is in braces too).
  std::string text;
  llvm::raw_string_ostream os(text);
  pass.printAsTextualPipeline(os);
  size_t open = text.find('{');
  StringRef options = open == std::string::npos
                          ? StringRef()
                          : StringRef(text).slice(open + 1, text.size() - 1);
  NamedAttrList settings;
  if (auto recorded = module->getAttrOfType<DictionaryAttr>(kTrainingAttrName))
    settings.assign(recorded.getValue());
  settings.set(pass.getArgument(),
               StringAttr::get(module.getContext(), options));
  module->setAttr(kTrainingAttrName,
                  settings.getDictionary(module.getContext()));
}
