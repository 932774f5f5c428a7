//===- AsmUtils.cpp - custom assembly directives of the moe ops -----------===//

#include "AsmUtils.h"

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

void mlir::moe::detail::printConvertedType(OpAsmPrinter &printer, Operation *,
                                           Type from, Type to) {
  printer << from;
  if (to != from)
    printer << " -> " << to;
}
