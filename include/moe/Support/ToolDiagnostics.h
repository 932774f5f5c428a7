//===- ToolDiagnostics.h - how the tools print diagnostics ------*- C++ -*-===//
//
// The importer locates an op by the module it belongs to, a name without a
// file position (loc("model.layers.0.block_sparse_moe")), which MLIR's
// SourceMgrDiagnosticHandler prints as
//   <unknown>:0: error: loc("model.layers.0.block_sparse_moe"): message
// The tools print it as a compiler would, naming the input and the module:
//   model.mlir: model.layers.0.block_sparse_moe: error: message
// Diagnostics at a position in a file print as before, with the source line,
// unless that line is too long to show: a module's first line holds its
// whole config (kilobytes), which would bury each error about the module.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_TOOLDIAGNOSTICS_H
#define MOE_SUPPORT_TOOLDIAGNOSTICS_H

#include "mlir/IR/Diagnostics.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::moe {

/// Prints `diagnostic` and its notes to `os` when its location has no
/// position in a file or is on a line of `input` too long to show (over 500
/// characters), and returns failure (leaving it to the next handler, which
/// shows the source line) otherwise. `inputPath` is the tool's input ("-"
/// for stdin), which a diagnostic without a position is about, and `input`
/// its contents (null where not at hand).
LogicalResult printToolDiagnostic(Diagnostic &diagnostic,
                                  llvm::StringRef inputPath,
                                  const llvm::MemoryBuffer *input,
                                  llvm::raw_ostream &os);

/// A SourceMgrDiagnosticHandler that prints diagnostics through
/// printToolDiagnostic where it takes them (the input is the source
/// manager's main buffer). It also turns off printing the
/// operation a diagnostic is about, which for a pass's error about the
/// module would be the whole model.
class ToolDiagnosticHandler : public SourceMgrDiagnosticHandler {
public:
  ToolDiagnosticHandler(llvm::SourceMgr &sourceMgr, MLIRContext *context,
                        llvm::StringRef inputPath);

private:
  std::string inputPath;
};

} // namespace mlir::moe

#endif // MOE_SUPPORT_TOOLDIAGNOSTICS_H
