//===- BuiltIrErrors.h - a pass's own check of the IR it built --*- C++ -*-===//
//
// A pass that builds or changes ops from valid input can leave them invalid
// when its options or an input it did not foresee say so. The verifier
// would then blame an op the user wrote or never saw; the pass checks the
// ops itself and says what of its options or input caused the error.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_BUILTIRERRORS_H
#define MOE_TRANSFORMS_BUILTIRERRORS_H

#include "mlir/IR/Operation.h"

#include <optional>
#include <string>

namespace mlir::moe {

/// Where the verifier of a built op failed first, and its message.
struct BuiltIrError {
  Location location;
  std::string message;
};

/// Verifies `op` and what it holds without printing the diagnostics; the
/// first error, if any.
std::optional<BuiltIrError> firstVerifierError(Operation *op);

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_BUILTIRERRORS_H
