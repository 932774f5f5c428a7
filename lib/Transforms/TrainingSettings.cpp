//===- TrainingSettings.cpp - the training settings a module records ------===//

#include "moe/Transforms/TrainingSettings.h"

#include "moe/MoeDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace {
/// `text`'s words separated by one space each.
std::string singleSpaced(llvm::StringRef text) {
  llvm::SmallVector<llvm::StringRef> words;
  text.split(words, ' ', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  return llvm::join(words, " ");
}
} // namespace

std::string mlir::moe::passOptionsText(Pass &pass) {
  // printAsTextualPipeline gives "name{key=value ...}" with every option (a
  // list option's value is in braces too, and an empty list leaves its two
  // spaces, one of which goes).
  std::string text;
  llvm::raw_string_ostream os(text);
  pass.printAsTextualPipeline(os);
  size_t open = text.find('{');
  return open == std::string::npos ? std::string()
                                   : singleSpaced(llvm::StringRef(text).slice(
                                         open + 1, text.size() - 1));
}

void mlir::moe::recordTrainingSettings(Pass &pass, ModuleOp module) {
  NamedAttrList settings;
  if (auto recorded = module->getAttrOfType<DictionaryAttr>(kTrainingAttrName))
    settings.assign(recorded.getValue());
  settings.set(pass.getArgument(),
               StringAttr::get(module.getContext(), passOptionsText(pass)));
  module->setAttr(kTrainingAttrName,
                  settings.getDictionary(module.getContext()));
}

LogicalResult mlir::moe::requireSameSettingsAsBefore(Pass &pass,
                                                     ModuleOp module) {
  auto recorded = module->getAttrOfType<DictionaryAttr>(kTrainingAttrName);
  auto before =
      recorded ? recorded.getAs<StringAttr>(pass.getArgument()) : StringAttr();
  std::string now = passOptionsText(pass);
  if (!before || before.getValue() == now)
    return success();
  return module.emitError()
         << pass.getArgument() << ": the module was already transformed with '"
         << before.getValue() << "'; running it again with '" << now
         << "' would not undo that";
}
