//===- CollectiveVjp.cpp - differentiation rules of the collectives -------===//
//
// In an SPMD program every rank holds its own cotangent of each value, and
// the gradient of the program's loss is the sum of the ranks' cotangents
// (each rank's loss is its part of the whole). Under that convention the
// vector-Jacobian product of a collective is its transpose: all-gather and
// reduce-scatter are each other's, a sum all-reduce is its own, and an
// all-to-all is the all-to-all the other way round.
//
//===----------------------------------------------------------------------===//

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

struct AllGatherVjp
    : DifferentiableOpInterface::ExternalModel<AllGatherVjp,
                                               shard::AllGatherOp> {
  LogicalResult buildVjp(Operation *op, OpBuilder &b,
                         ArrayRef<Value> resultGrads,
                         SmallVectorImpl<Value> &operandGrads) const {
    auto gather = cast<shard::AllGatherOp>(op);
    operandGrads.push_back(shard::ReduceScatterOp::create(
        b, op->getLoc(), gather.getInput().getType(), gather.getGrid(),
        gather.getGridAxes(), resultGrads[0], shard::ReductionKind::Sum,
        gather.getGatherAxis()));
    return success();
  }
};

struct ReduceScatterVjp
    : DifferentiableOpInterface::ExternalModel<ReduceScatterVjp,
                                               shard::ReduceScatterOp> {
  LogicalResult buildVjp(Operation *op, OpBuilder &b,
                         ArrayRef<Value> resultGrads,
                         SmallVectorImpl<Value> &operandGrads) const {
    auto scatter = cast<shard::ReduceScatterOp>(op);
    if (scatter.getReduction() != shard::ReductionKind::Sum)
      return op->emitError("only a sum reduce-scatter is differentiable");
    operandGrads.push_back(shard::AllGatherOp::create(
        b, op->getLoc(), scatter.getInput().getType(), scatter.getGrid(),
        scatter.getGridAxes(), resultGrads[0], scatter.getScatterAxis()));
    return success();
  }
};

struct AllReduceVjp
    : DifferentiableOpInterface::ExternalModel<AllReduceVjp,
                                               shard::AllReduceOp> {
  LogicalResult buildVjp(Operation *op, OpBuilder &b,
                         ArrayRef<Value> resultGrads,
                         SmallVectorImpl<Value> &operandGrads) const {
    auto reduce = cast<shard::AllReduceOp>(op);
    if (reduce.getReduction() != shard::ReductionKind::Sum)
      return op->emitError("only a sum all-reduce is differentiable");
    operandGrads.push_back(shard::AllReduceOp::create(
        b, op->getLoc(), reduce.getInput().getType(), reduce.getGrid(),
        reduce.getGridAxes(), resultGrads[0], shard::ReductionKind::Sum));
    return success();
  }
};

struct AllToAllVjp
    : DifferentiableOpInterface::ExternalModel<AllToAllVjp, shard::AllToAllOp> {
  LogicalResult buildVjp(Operation *op, OpBuilder &b,
                         ArrayRef<Value> resultGrads,
                         SmallVectorImpl<Value> &operandGrads) const {
    auto exchange = cast<shard::AllToAllOp>(op);
    operandGrads.push_back(shard::AllToAllOp::create(
        b, op->getLoc(), exchange.getInput().getType(), exchange.getGrid(),
        exchange.getGridAxes(), resultGrads[0], exchange.getConcatAxis(),
        exchange.getSplitAxis()));
    return success();
  }
};

} // namespace

void mlir::moe::registerCollectiveVjpModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, shard::ShardDialect *) {
    shard::AllGatherOp::attachInterface<AllGatherVjp>(*context);
    shard::ReduceScatterOp::attachInterface<ReduceScatterVjp>(*context);
    shard::AllReduceOp::attachInterface<AllReduceVjp>(*context);
    shard::AllToAllOp::attachInterface<AllToAllVjp>(*context);
  });
}
