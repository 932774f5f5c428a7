//===- BuiltIrErrors.cpp - a pass's own check of the IR it built ----------===//

#include "moe/Transforms/BuiltIrErrors.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;

std::optional<moe::BuiltIrError> moe::firstVerifierError(Operation *op) {
  std::optional<BuiltIrError> error;
  ScopedDiagnosticHandler capture(op->getContext(), [&](Diagnostic &d) {
    if (!error && d.getSeverity() == DiagnosticSeverity::Error)
      error = BuiltIrError{d.getLocation(), d.str()};
    return success();
  });
  if (succeeded(verify(op)))
    return std::nullopt;
  return error ? error : BuiltIrError{op->getLoc(), "invalid"};
}
