//===- ToolDiagnostics.cpp - how the tools print diagnostics --------------===//

#include "moe/Support/ToolDiagnostics.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"

#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

#include <algorithm>

using namespace mlir;

static bool hasFilePosition(Location location) {
  return location
      ->walk([](Location nested) {
        return isa<FileLineColRange>(nested) ? WalkResult::interrupt()
                                             : WalkResult::advance();
      })
      .wasInterrupted();
}

/// Where a diagnostic is: "file:line:col" at a file position, else the
/// input followed by the names of the location, if any.
static std::string describe(Location location, StringRef inputPath) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (auto position = dyn_cast<FileLineColLoc>(location)) {
    os << position.getFilename().getValue() << ':' << position.getLine() << ':'
       << position.getColumn();
    return text;
  }
  os << (inputPath == "-" ? "<stdin>" : inputPath);
  llvm::SetVector<StringRef> names;
  location->walk([&](Location nested) {
    if (auto name = dyn_cast<NameLoc>(nested))
      names.insert(name.getName().getValue());
    return WalkResult::advance();
  });
  if (!names.empty())
    os << ": " << llvm::join(names, ", ");
  return text;
}

static void print(Location location, DiagnosticSeverity severity,
                  StringRef message, StringRef inputPath,
                  llvm::raw_ostream &os) {
  std::string where = describe(location, inputPath);
  switch (severity) {
  case DiagnosticSeverity::Error:
    llvm::WithColor::error(os, where);
    break;
  case DiagnosticSeverity::Warning:
    llvm::WithColor::warning(os, where);
    break;
  case DiagnosticSeverity::Note:
    llvm::WithColor::note(os, where);
    break;
  case DiagnosticSeverity::Remark:
    llvm::WithColor::remark(os, where);
    break;
  }
  os << message << '\n';
}

/// Source lines longer than this are not shown under a diagnostic.
constexpr size_t kMaxShownLine = 500;

/// Whether `location` is a position in `input` (which names stdin
/// "<stdin>") on a line longer than kMaxShownLine.
static bool isOnLongLine(Location location, const llvm::MemoryBuffer *input) {
  auto position = dyn_cast<FileLineColLoc>(location);
  if (!input || !position ||
      position.getFilename().getValue() != input->getBufferIdentifier())
    return false;
  StringRef text = input->getBuffer();
  size_t start = 0;
  for (unsigned line = 1; line < position.getLine(); ++line) {
    start = text.find('\n', start);
    if (start == StringRef::npos)
      return false;
    ++start;
  }
  size_t end = std::min(text.find('\n', start), text.size());
  return end - start > kMaxShownLine;
}

LogicalResult mlir::moe::printToolDiagnostic(Diagnostic &diagnostic,
                                             StringRef inputPath,
                                             const llvm::MemoryBuffer *input,
                                             llvm::raw_ostream &os) {
  Location location = diagnostic.getLocation();
  if (hasFilePosition(location) && !isOnLongLine(location, input))
    return failure();
  // A pass option's bad value: LLVM's option parser has printed why, and
  // MLIR's pipeline parser reports the failure, nowhere, with no message.
  if (isa<UnknownLoc>(location) &&
      diagnostic.getSeverity() == DiagnosticSeverity::Error &&
      diagnostic.str().empty() && diagnostic.getNotes().empty())
    return success();
  print(location, diagnostic.getSeverity(), diagnostic.str(), inputPath, os);
  for (Diagnostic &note : diagnostic.getNotes())
    print(note.getLocation(), note.getSeverity(), note.str(), inputPath, os);
  os.flush();
  return success();
}

mlir::moe::ToolDiagnosticHandler::ToolDiagnosticHandler(
    llvm::SourceMgr &sourceMgr, MLIRContext *context, StringRef inputPath)
    : SourceMgrDiagnosticHandler(sourceMgr, context),
      inputPath(inputPath.str()) {
  context->printOpOnDiagnostic(false);
  // Replaces the handler that SourceMgrDiagnosticHandler registered.
  setHandler([this, &sourceMgr](Diagnostic &diagnostic) {
    const llvm::MemoryBuffer *input =
        sourceMgr.getNumBuffers()
            ? sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID())
            : nullptr;
    if (failed(printToolDiagnostic(diagnostic, this->inputPath, input, os)))
      emitDiagnostic(diagnostic);
  });
}
