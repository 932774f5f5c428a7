//===- ToolCommandLine.h - the tools' command lines -------------*- C++ -*-===//
//
// The tools are built on LLVM's command line. Its --version names LLVM
// alone, its --help lists LLVM's options, and a repeated option keeps its
// last value; ours name this project first, list their own options, and
// refuse a repeated one.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_TOOLCOMMANDLINE_H
#define MOE_SUPPORT_TOOLCOMMANDLINE_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

namespace llvm {
class raw_ostream;
namespace cl {
class Option;
class OptionCategory;
} // namespace cl
} // namespace llvm

namespace mlir::moe {

/// Prints this project's version, then the MLIR/LLVM it was built with.
void printToolVersion(llvm::raw_ostream &os);

/// Parses a tool's command line: --version prints printToolVersion,
/// --help shows the options of `options` only, and an option of `options`
/// given twice is an error (exit 1), as any other bad argument is.
void parseToolCommandLine(int argc, char **argv,
                          llvm::cl::OptionCategory &options,
                          llvm::StringRef overview);

/// After parsing: exits (status 1) with an error naming the first
/// single-valued option given more often than `mostOccurrences` says (0:
/// as often as it likes). `tool` is argv[0].
void rejectRepeatedOptions(
    llvm::StringRef tool,
    llvm::function_ref<unsigned(const llvm::cl::Option &)> mostOccurrences);

} // namespace mlir::moe

#endif // MOE_SUPPORT_TOOLCOMMANDLINE_H
