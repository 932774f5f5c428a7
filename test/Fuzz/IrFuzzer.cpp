//===- IrFuzzer.cpp - the IR parser and the moe dialect's verifiers -------===//
//
// Any text either parses and verifies, or is rejected with diagnostics; no
// verifier (nor the tools' check of tensor sizes) may crash on a malformed
// op.
//
//===----------------------------------------------------------------------===//

#include "FuzzModel.h"
#include "moe/MoeDialect.h"
#include "moe/Support/ParseModule.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::ParserConfig config(&mlir::moe::fuzz::fuzzContext(),
                            /*verifyAfterParse=*/false);
  // MLIR's lexer reads up to a terminating NUL, as files loaded by tools have.
  std::string text(reinterpret_cast<const char *>(data), size);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(text, config);
  if (!module)
    return 0;
  // As the tools: ops that MLIR 22's verifiers crash on are rejected
  // first, and tensors too large to plan last.
  if (succeeded(mlir::moe::rejectVerifierCrashes(*module)) &&
      succeeded(mlir::verify(*module)))
    (void)mlir::moe::verifyTensorSizes(*module);
  return 0;
}
