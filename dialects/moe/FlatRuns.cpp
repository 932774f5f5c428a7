//===- FlatRuns.cpp - the upstream tensor ops a model's storage allows ----===//
//
// Buffers are row-major and contiguous. A reshape keeps the bytes, the
// leading run of a tensor is a view of its start, and zeros padded after
// the end are a copy and a fill: the forms of tensor.extract_slice and
// tensor.pad that the interpreter and the targets implement (the
// distributed optimizer pads a parameter to its copies' equal parts).
//
//===----------------------------------------------------------------------===//

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace {

/// Whether the static `values` are all `expected`, but the first when
/// `exceptFirst`.
bool allEqual(ArrayRef<int64_t> values, int64_t expected, bool exceptFirst) {
  return llvm::all_of(llvm::enumerate(values), [&](auto indexed) {
    return (exceptFirst && indexed.index() == 0) || indexed.value() == expected;
  });
}

} // namespace

bool mlir::moe::isLeadingRun(tensor::ExtractSliceOp slice) {
  RankedTensorType source = slice.getSourceType();
  return source.getRank() >= 1 && source.hasStaticShape() &&
         slice.getType().hasStaticShape() &&
         slice.getType().getRank() == source.getRank() &&
         allEqual(slice.getStaticOffsets(), 0, false) &&
         allEqual(slice.getStaticStrides(), 1, false) &&
         llvm::equal(slice.getStaticSizes().drop_front(),
                     source.getShape().drop_front());
}

LogicalResult mlir::moe::checkLeadingRun(tensor::ExtractSliceOp slice) {
  if (isLeadingRun(slice))
    return success();
  return slice.emitOpError()
         << "takes a leading run of a static tensor only (offsets 0, strides "
            "1, every size but the first the source's), got "
         << slice.getSourceType() << " to " << slice.getType();
}

LogicalResult mlir::moe::checkZerosAfter(tensor::PadOp pad) {
  Value padding = pad.getConstantPaddingValue();
  if (pad.getSourceType().hasStaticShape() &&
      pad.getResultType().hasStaticShape() &&
      allEqual(pad.getStaticLow(), 0, false) &&
      allEqual(pad.getStaticHigh(), 0, true) && padding &&
      (matchPattern(padding, m_PosZeroFloat()) ||
       matchPattern(padding, m_Zero())))
    return success();
  return pad.emitOpError()
         << "pads a static tensor with zeros after its first dimension "
            "only, got "
         << pad.getSourceType() << " to " << pad.getResultType();
}

Value mlir::moe::viewSource(Operation *op) {
  if (auto view = dyn_cast<ViewLikeOpInterface>(op))
    return view.getViewSource();
  // Another slice is the emitter's and the interpreter's error to report.
  auto slice = dyn_cast<tensor::ExtractSliceOp>(op);
  return slice && isLeadingRun(slice) ? slice.getSource() : Value();
}

Value mlir::moe::padWithZerosAfter(OpBuilder &b, Location loc, Value value,
                                   int64_t extent) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  SmallVector<OpFoldResult> low(shape.size(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> high = low;
  high[0] = b.getIndexAttr(extent - shape[0]);
  shape[0] = extent;
  Operation *zero =
      arith::ConstantOp::create(b, loc, b.getZeroAttr(type.getElementType()));
  auto pad = tensor::PadOp::create(b, loc, type.clone(shape), value, low, high,
                                   zero->getResult(0));
  // Inside the region the pad is self-contained: no scalar constant in the
  // function for the targets to declare.
  zero->moveBefore(pad.getBody()->getTerminator());
  return pad.getResult();
}

Value mlir::moe::leadingRun(OpBuilder &b, Location loc, Value value,
                            int64_t extent) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> sizes(type.getShape());
  sizes[0] = extent;
  SmallVector<int64_t> zeros(sizes.size(), 0), ones(sizes.size(), 1);
  MLIRContext *context = b.getContext();
  return tensor::ExtractSliceOp::create(b, loc, value,
                                        getAsIndexOpFoldResult(context, zeros),
                                        getAsIndexOpFoldResult(context, sizes),
                                        getAsIndexOpFoldResult(context, ones));
}
