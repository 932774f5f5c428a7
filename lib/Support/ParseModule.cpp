//===- ParseModule.cpp - parsing and verifying a tool's module ------------===//

#include "moe/Support/ParseModule.h"
#include "moe/MoeDialect.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

using namespace mlir;

namespace {

/// The tensor-axis attributes of the collectives whose verifiers index the
/// operand's shape by them unchecked.
struct AxisAttributes {
  StringRef op;
  SmallVector<StringRef, 2> axes;
};

} // namespace

LogicalResult mlir::moe::rejectVerifierCrashes(Operation *root) {
  static const AxisAttributes kUncheckedAxes[] = {
      {shard::AllSliceOp::getOperationName(), {"slice_axis"}},
      {shard::AllToAllOp::getOperationName(), {"split_axis", "concat_axis"}},
      {shard::ReduceScatterOp::getOperationName(), {"scatter_axis"}},
      {shard::ScatterOp::getOperationName(), {"scatter_axis"}}};
  bool rejected = false;
  root->walk([&](Operation *op) {
    // tensor.expand_shape's and collapse_shape's verifiers read each
    // reassociation group's first expression unchecked.
    if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op)) {
      auto groups = op->getAttrOfType<ArrayAttr>("reassociation");
      for (auto [index, group] : llvm::enumerate(
               groups ? groups.getValue() : ArrayRef<Attribute>())) {
        auto indices = dyn_cast<ArrayAttr>(group);
        if (indices && indices.empty()) {
          op->emitError() << "reassociation group #" << index << " is empty";
          rejected = true;
        }
      }
      return;
    }
    if (auto grid = dyn_cast<shard::GridOp>(op)) {
      if (llvm::is_contained(grid.getShape(), 0)) {
        grid.emitError("a grid dimension must be positive");
        rejected = true;
      }
      return;
    }
    for (const AxisAttributes &entry : kUncheckedAxes) {
      if (op->getName().getStringRef() != entry.op)
        continue;
      auto type = op->getNumOperands() == 0
                      ? nullptr
                      : dyn_cast<RankedTensorType>(op->getOperand(0).getType());
      for (StringRef name : entry.axes) {
        auto axis = op->getAttrOfType<IntegerAttr>(name);
        if (!type || !axis)
          continue; // MLIR's own verifiers reject these
        int64_t value = axis.getValue().getSExtValue();
        if (value < 0 || value >= type.getRank()) {
          op->emitError() << "'" << name << "' (" << value
                          << ") must be an axis of the operand, in [0, "
                          << type.getRank() << ")";
          rejected = true;
        }
      }
    }
  });
  return failure(rejected);
}

OwningOpRef<ModuleOp>
mlir::moe::parseAndVerifyModule(llvm::SourceMgr &sourceMgr,
                                MLIRContext *context) {
  // A binary file (a checkpoint given as the model) would be quoted as the
  // "line" of the parser's first error, kilobytes of bytes.
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  if (size_t nul = buffer->getBuffer().find('\0'); nul != StringRef::npos) {
    emitError(UnknownLoc::get(context))
        << "not MLIR text: byte " << nul
        << " is a NUL (a binary file, such as a checkpoint?)";
    return nullptr;
  }
  ParserConfig config(context, /*verifyAfterParse=*/false);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, config);
  if (!module || failed(rejectVerifierCrashes(*module)) ||
      failed(verify(*module)) || failed(verifyTensorSizes(*module)))
    return nullptr;
  return module;
}
