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

void mlir::moe::parseToolCommandLine(int argc, char **argv,
                                     llvm::cl::OptionCategory &options,
                                     llvm::StringRef overview) {
  llvm::cl::SetVersionPrinter(printToolVersion);
  llvm::cl::HideUnrelatedOptions(options);
  llvm::cl::ParseCommandLineOptions(argc, argv, overview);
  for (const auto &entry : llvm::cl::getRegisteredOptions()) {
    const llvm::cl::Option *option = entry.second;
    // A list option takes every occurrence.
    bool single = option->getNumOccurrencesFlag() == llvm::cl::Optional ||
                  option->getNumOccurrencesFlag() == llvm::cl::Required;
    if (single && option->getNumOccurrences() > 1 &&
        llvm::is_contained(option->Categories, &options)) {
      llvm::errs() << llvm::sys::path::filename(argv[0]) << ": error: option -"
                   << (option->ArgStr.size() > 1 ? "-" : "") << option->ArgStr
                   << " is given twice\n";
      std::exit(1);
    }
  }
}
