//===- ToolVersion.h - what the tools' --version says -----------*- C++ -*-===//
//
// The tools are built on LLVM's command line, whose --version names LLVM
// alone; ours name this project first.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_TOOLVERSION_H
#define MOE_SUPPORT_TOOLVERSION_H

namespace llvm {
class raw_ostream;
} // namespace llvm

namespace mlir::moe {

/// Prints this project's version, then the MLIR/LLVM it was built with.
void printToolVersion(llvm::raw_ostream &os);

/// Makes --version printToolVersion. Call before parsing the command line.
void setToolVersionPrinter();

} // namespace mlir::moe

#endif // MOE_SUPPORT_TOOLVERSION_H
