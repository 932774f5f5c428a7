//===- ToolCommandLine.cpp - the tools' command lines ---------------------===//

#include "moe/Support/ToolCommandLine.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

void mlir::moe::printToolVersion(llvm::raw_ostream &os) {
  os << "moe-compiler " << MOE_VERSION << " (MLIR/LLVM " << LLVM_VERSION_STRING
     << ")\n";
}

void mlir::moe::rejectRepeatedOptions(
    llvm::StringRef tool,
    llvm::function_ref<unsigned(const llvm::cl::Option &)> mostOccurrences) {
  for (const auto &entry : llvm::cl::getRegisteredOptions()) {
    const llvm::cl::Option *option = entry.second;
    // A list option takes every occurrence.
    bool single = option->getNumOccurrencesFlag() == llvm::cl::Optional ||
                  option->getNumOccurrencesFlag() == llvm::cl::Required;
    unsigned most = single ? mostOccurrences(*option) : 0;
    if (most > 0 && static_cast<unsigned>(option->getNumOccurrences()) > most) {
      llvm::errs() << llvm::sys::path::filename(tool) << ": error: option -"
                   << (option->ArgStr.size() > 1 ? "-" : "") << option->ArgStr
                   << " is given twice\n";
      std::exit(1);
    }
  }
}

void mlir::moe::parseToolCommandLine(int argc, char **argv,
                                     llvm::cl::OptionCategory &options,
                                     llvm::StringRef overview) {
  llvm::cl::SetVersionPrinter(printToolVersion);
  llvm::cl::HideUnrelatedOptions(options);
  llvm::cl::ParseCommandLineOptions(argc, argv, overview);
  rejectRepeatedOptions(argv[0], [&](const llvm::cl::Option &option) {
    return llvm::is_contained(option.Categories, &options) ? 1u : 0u;
  });
}
