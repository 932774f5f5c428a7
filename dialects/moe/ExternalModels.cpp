//===- ExternalModels.cpp - interfaces of the upstream ops a model uses ---===//
//
// Passes ask interfaces, not op names, what an op does to memory: reshapes
// are views of their operand, and the step counter's increment may update
// its operand in place like AdamW does.
//
//===----------------------------------------------------------------------===//

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

template <typename ReshapeOp>
struct ReshapeViewModel
    : ViewLikeOpInterface::ExternalModel<ReshapeViewModel<ReshapeOp>,
                                         ReshapeOp> {
  Value getViewSource(Operation *op) const {
    return cast<ReshapeOp>(op).getSrc();
  }
};

struct AddIInPlaceModel
    : InPlaceOpInterface::ExternalModel<AddIInPlaceModel, arith::AddIOp> {
  unsigned getInPlaceOperandIndex(Operation *, unsigned) const { return 0; }
};

} // namespace

void mlir::moe::registerExternalModels(DialectRegistry &registry) {
  registerDifferentiableExternalModels(registry);
  registerCollectiveVjpModels(registry);
  registry.addExtension(+[](MLIRContext *context, tensor::TensorDialect *) {
    tensor::ExpandShapeOp::attachInterface<
        ReshapeViewModel<tensor::ExpandShapeOp>>(*context);
    tensor::CollapseShapeOp::attachInterface<
        ReshapeViewModel<tensor::CollapseShapeOp>>(*context);
  });
  registry.addExtension(+[](MLIRContext *context, arith::ArithDialect *) {
    arith::AddIOp::attachInterface<AddIInPlaceModel>(*context);
  });
}
