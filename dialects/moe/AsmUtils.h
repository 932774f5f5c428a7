//===- AsmUtils.h - custom assembly directives of the moe ops ---*- C++ -*-===//
//
// The `custom<...>` directives that ops of more than one .td file share.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_ASMUTILS_H
#define MOE_DIALECT_ASMUTILS_H

#include "mlir/IR/OpImplementation.h"

namespace mlir::moe::detail {

/// custom<ConvertedType>(type($from), type($to)): the first value's type,
/// then `-> type` of the second only where it differs: a result narrowed to
/// bf16 after its source's type (NarrowableResultOpInterface), or the type
/// an op computes in after that of an operand it reads stored as bf16
/// (WidenableOperandOpInterface).
ParseResult parseConvertedType(OpAsmParser &parser, Type &from, Type &to);
void printConvertedType(OpAsmPrinter &printer, Operation *, Type from, Type to);

/// custom<GemmResultType>(ref(type($operand)), type($result)): nothing where
/// the result has gemmResultType of the operand's type (f32 for bf16), else
/// `-> type`: a GEMM's result narrowed to bf16 (NarrowableResultOpInterface).
ParseResult parseGemmResultType(OpAsmParser &parser, Type operand,
                                Type &result);
void printGemmResultType(OpAsmPrinter &printer, Operation *, Type operand,
                         Type result);

/// custom<AttentionLseType>(ref(type($query)), type($lse)): nothing; the
/// log-sum-exp's type follows from the query's (attentionLseType).
ParseResult parseAttentionLseType(OpAsmParser &parser, Type query, Type &lse);
void printAttentionLseType(OpAsmPrinter &printer, Operation *, Type query,
                           Type lse);

} // namespace mlir::moe::detail

#endif // MOE_DIALECT_ASMUTILS_H
