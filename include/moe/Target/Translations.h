//===- Translations.h - planned moe modules to target source ----*- C++ -*-===//
//
// Each output format is a registered translation (--emit=cpp,
// --emit=cuda): tools look targets up by name instead of comparing strings,
// and a new target registers itself beside the others.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TARGET_TRANSLATIONS_H
#define MOE_TARGET_TRANSLATIONS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>
#include <string>

namespace mlir::moe {

/// What the generated source records and does besides the module's code.
struct TranslateOptions {
  /// The model's name in the model ABI.
  std::string modelName = "model";
  /// Time each kernel call in a moe_profile_site (moe-compile --profile).
  bool profile = false;
};

/// Writes `module`, planned by moe-plan-memory, as source of one target.
using TranslateFunction = std::function<LogicalResult(
    ModuleOp module, llvm::raw_ostream &os, const TranslateOptions &options)>;

struct Translation {
  /// The --emit name: "cpp".
  llvm::StringRef name;
  llvm::StringRef description;
  /// The #moe.target name of the modules it translates: "cpu".
  llvm::StringRef targetName;
  TranslateFunction translate;
};

/// Registers the translations of every target built in (once).
void registerTranslations();
/// Adds `translation` to the registry.
void registerTranslation(Translation translation);
/// The registered translations, by name.
llvm::ArrayRef<Translation> getTranslations();
/// The translation named `name`, or null.
const Translation *lookupTranslation(llvm::StringRef name);

/// Parses --emit=NAME into a registered translation; its help lists them.
struct TranslationParser : public llvm::cl::parser<const Translation *> {
  explicit TranslationParser(llvm::cl::Option &option);
  void initialize();
  /// As cl::parser's, with an error that names the registered formats.
  bool parse(llvm::cl::Option &option, llvm::StringRef argName,
             llvm::StringRef arg, const Translation *&value);
};

/// The translation of the C++ (CPU) target, as --emit=cpp.
void registerCppTranslation();
/// The translation of the CUDA target, as --emit=cuda.
void registerCudaTranslation();

} // namespace mlir::moe

#endif // MOE_TARGET_TRANSLATIONS_H
