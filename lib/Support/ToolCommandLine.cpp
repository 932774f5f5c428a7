//===- ToolCommandLine.cpp - the tools' command lines ---------------------===//

#include "moe/Support/ToolCommandLine.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

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

namespace {
/// Runs `parse` with stderr captured (LLVM prints an option's own errors
/// there whatever stream it is given); what it printed. Parsing only reads
/// the command line: what exits inside it (--help, --version) prints to
/// stdout.
std::string captureStderr(llvm::function_ref<void()> parse) {
  std::FILE *capture = std::tmpfile();
  int saved = capture ? ::dup(STDERR_FILENO) : -1;
  if (saved < 0 || ::dup2(::fileno(capture), STDERR_FILENO) < 0) {
    if (saved >= 0)
      ::close(saved);
    if (capture)
      std::fclose(capture);
    parse();
    return {};
  }
  parse();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string text;
  std::rewind(capture);
  for (int c; (c = std::fgetc(capture)) != EOF;)
    text += static_cast<char>(c);
  std::fclose(capture);
  return text;
}
} // namespace

void mlir::moe::parseToolCommandLine(int argc, char **argv,
                                     llvm::cl::OptionCategory &options,
                                     llvm::StringRef overview) {
  llvm::cl::SetVersionPrinter(printToolVersion);
  llvm::cl::HideUnrelatedOptions(options);
  // LLVM's own messages ("TOOL: for the --top option: 'x' value invalid
  // for long argument!") become the tools' one error line.
  std::string errors;
  llvm::raw_string_ostream errorStream(errors);
  bool parsed = false;
  errors += captureStderr([&] {
    parsed =
        llvm::cl::ParseCommandLineOptions(argc, argv, overview, &errorStream);
  });
  if (!parsed) {
    std::string tool = llvm::sys::path::filename(argv[0]).str();
    llvm::SmallVector<llvm::StringRef> lines;
    llvm::StringRef(errors).split(lines, '\n', -1, /*KeepEmpty=*/false);
    llvm::errs() << tool << ": error: "
                 << llvm::join(llvm::map_range(lines,
                                               [&](llvm::StringRef line) {
                                                 line.consume_front(tool +
                                                                    ": ");
                                                 return line.trim().rtrim('!');
                                               }),
                               "; ")
                 << "\n";
    std::exit(1);
  }
  llvm::errs() << errors;
  rejectRepeatedOptions(argv[0], [&](const llvm::cl::Option &option) {
    return llvm::is_contained(option.Categories, &options) ? 1u : 0u;
  });
}
