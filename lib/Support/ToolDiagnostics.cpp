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

/// Whether `location` is a position of `inputPath` on a line of its text
/// `inputText` longer than kMaxShownLine.
static bool isOnLongLine(Location location, StringRef inputPath,
                         StringRef inputText) {
  auto position = dyn_cast<FileLineColLoc>(location);
  if (!position || position.getFilename().getValue() != inputPath)
    return false;
  size_t start = 0;
  for (unsigned line = 1; line < position.getLine(); ++line) {
    start = inputText.find('\n', start);
    if (start == StringRef::npos)
      return false;
    ++start;
  }
  size_t end = std::min(inputText.find('\n', start), inputText.size());
  return end - start > mlir::moe::kMaxShownLine;
}

LogicalResult mlir::moe::printToolDiagnostic(Diagnostic &diagnostic,
                                             StringRef inputPath,
                                             StringRef inputText,
                                             llvm::raw_ostream &os) {
  Location location = diagnostic.getLocation();
  if (hasFilePosition(location) &&
      !isOnLongLine(location, inputPath, inputText))
    return failure();
  // A pass option's bad value: LLVM's option parser has printed why, and
  // MLIR's pipeline parser reports the failure with an empty message.
  if (diagnostic.str().empty() && diagnostic.getNotes().empty())
    return success();
  print(diagnostic.getLocation(), diagnostic.getSeverity(), diagnostic.str(),
        inputPath, os);
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
    StringRef inputText =
        sourceMgr.getNumBuffers()
            ? sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID())->getBuffer()
            : StringRef();
    if (failed(printToolDiagnostic(diagnostic, this->inputPath, inputText, os)))
      emitDiagnostic(diagnostic);
  });
}
