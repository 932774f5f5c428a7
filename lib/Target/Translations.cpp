//===- Translations.cpp - the registry of output formats ------------------===//

#include "moe/Target/Translations.h"

#include <vector>

using namespace mlir;
using namespace mlir::moe;

namespace {

std::vector<Translation> &registry() {
  static std::vector<Translation> translations;
  return translations;
}

} // namespace

void moe::registerTranslations() {
  if (!registry().empty())
    return;
  registerCppTranslation();
  registerCudaTranslation();
}

ArrayRef<Translation> moe::getTranslations() { return registry(); }

const Translation *moe::lookupTranslation(StringRef name) {
  for (const Translation &translation : registry())
    if (translation.name == name)
      return &translation;
  return nullptr;
}

void moe::registerTranslation(Translation translation) {
  registry().push_back(std::move(translation));
}

moe::TranslationParser::TranslationParser(llvm::cl::Option &option)
    : llvm::cl::parser<const Translation *>(option) {}

void moe::TranslationParser::initialize() {
  llvm::cl::parser<const Translation *>::initialize();
  registerTranslations();
  for (const Translation &translation : getTranslations())
    addLiteralOption(translation.name, &translation, translation.description);
}

bool moe::TranslationParser::parse(llvm::cl::Option &option, StringRef,
                                   StringRef arg, const Translation *&value) {
  value = lookupTranslation(arg);
  if (value)
    return false;
  std::string known;
  for (const Translation &translation : getTranslations())
    known += (known.empty() ? "" : ", ") + translation.name.str();
  return option.error("unknown output format '" + arg +
                      "' (registered: " + known + ")");
}
