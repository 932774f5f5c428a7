//===- AsmUtils.cpp - custom assembly directives of the moe ops -----------===//

#include "AsmUtils.h"

using namespace mlir;

ParseResult mlir::moe::detail::parseNarrowableResult(OpAsmParser &parser,
                                                     Type &source,
                                                     Type &result) {
  if (parser.parseType(source))
    return failure();
  result = source;
  if (succeeded(parser.parseOptionalArrow()))
    return parser.parseType(result);
  return success();
}

void mlir::moe::detail::printNarrowableResult(OpAsmPrinter &printer,
                                              Operation *, Type source,
                                              Type result) {
  printer << source;
  if (result != source)
    printer << " -> " << result;
}
