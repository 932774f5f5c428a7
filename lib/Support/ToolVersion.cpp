//===- ToolVersion.cpp - what the tools' --version says -------------------===//

#include "moe/Support/ToolVersion.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

void mlir::moe::printToolVersion(llvm::raw_ostream &os) {
  os << "moe-compiler " << MOE_VERSION << " (MLIR/LLVM " << LLVM_VERSION_STRING
     << ")\n";
}

void mlir::moe::setToolVersionPrinter() {
  llvm::cl::SetVersionPrinter(printToolVersion);
}
