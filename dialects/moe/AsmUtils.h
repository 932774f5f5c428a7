//===- AsmUtils.h - custom assembly directives of the moe ops ---*- C++ -*-===//
//
// The `custom<...>` directives that ops of more than one .td file share.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_ASMUTILS_H
#define MOE_DIALECT_ASMUTILS_H

#include "mlir/IR/OpImplementation.h"

namespace mlir::moe::detail {

/// custom<NarrowableResult>(type($source), type($result)): the source's
/// type, then `-> result-type` only where the result's differs (a result
/// narrowed to bf16, NarrowableResultOpInterface).
ParseResult parseNarrowableResult(OpAsmParser &parser, Type &source,
                                  Type &result);
void printNarrowableResult(OpAsmPrinter &printer, Operation *, Type source,
                           Type result);

} // namespace mlir::moe::detail

#endif // MOE_DIALECT_ASMUTILS_H
