//===- AsmUtils.cpp - custom assembly directives of the moe ops -----------===//

#include "AsmUtils.h"
#include "MoeDialect.h"

using namespace mlir;

ParseResult mlir::moe::detail::parseConvertedType(OpAsmParser &parser,
                                                  Type &from, Type &to) {
  if (parser.parseType(from))
    return failure();
  to = from;
  if (succeeded(parser.parseOptionalArrow()))
    return parser.parseType(to);
  return success();
}

ParseResult mlir::moe::detail::parseGemmResultType(OpAsmParser &parser,
                                                   Type operand, Type &result) {
  if (succeeded(parser.parseOptionalArrow()))
    return parser.parseType(result);
  result = gemmResultType(operand);
  return success();
}

void mlir::moe::detail::printGemmResultType(OpAsmPrinter &printer, Operation *,
                                            Type operand, Type result) {
  if (result != gemmResultType(operand))
    printer << " -> " << result;
}

void mlir::moe::detail::printConvertedType(OpAsmPrinter &printer, Operation *,
                                           Type from, Type to) {
  printer << from;
  if (to != from)
    printer << " -> " << to;
}

ParseResult mlir::moe::detail::parseAttentionLseType(OpAsmParser &parser,
                                                     Type query, Type &lse) {
  lse = attentionLseType(query);
  if (!lse)
    return parser.emitError(parser.getNameLoc())
           << "the query of an attention must be a [batch, seq, heads, "
              "head_dim] tensor, got "
           << query;
  return success();
}

void mlir::moe::detail::printAttentionLseType(OpAsmPrinter &, Operation *, Type,
                                              Type) {}
