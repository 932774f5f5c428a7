//===- ExpertParallel.cpp - experts and batch over the ranks of a group ---===//
//
// A model's functions become SPMD programs: the program of one rank, with
// local shapes and shard collectives. Routing decisions are made on the
// whole batch on every rank, so a model trained on P ranks computes the
// function it computes on one; tokens travel to their experts' ranks and
// back with all-to-alls (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/BuiltIrErrors.h"
#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moert/GridGroups.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"

#include <array>

namespace mlir::moe {
#define GEN_PASS_DEF_EXPERTPARALLEL
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

constexpr StringLiteral kGridName = "ranks";

/// Ops that compute token by token (or sequence by sequence): their results
/// have the batch or the tokens on axis 0, and each rank computes its part.
bool isTokenWise(Operation *op) {
  auto rank = [&] {
    return cast<ShapedType>(op->getResult(0).getType()).getRank();
  };
  if (isa<AddOp, MulOp, ScaleOp>(op))
    return rank() > 0;
  // They work on the last dimension: the batch leads another.
  if (isa<SliceOp, PadOp, ConcatOp>(op))
    return rank() > 1;
  return isa<EmbeddingOp, RmsNormOp, LinearOp, RouterOp, RopeOp, AttentionOp,
             SwigluOp, SigmoidScaleOp, GateNormOp, GateOp, CombineOp,
             tensor::CollapseShapeOp, tensor::ExpandShapeOp>(op);
}

/// Ops that keep their shapes: they see replicated or whole-batch values.
bool isUnchanged(Operation *op) {
  return isa<ml_program::GlobalLoadOp, arith::ConstantOp, CrossEntropyOp,
             CountTargetsOp, AuxLossOp, PooledAuxLossOp, ZLossOp,
             RoutingMetricsOp, ExpertSimilarityOp, AddOp, MulOp, ScaleOp,
             SliceOp, PadOp, ConcatOp, func::ReturnOp>(op);
}

class Partitioner {
public:
  Partitioner(ModuleOp module, int64_t ranks, int64_t expertRanks)
      : module(module), ranks(ranks), expertRanks(expertRanks) {}

  LogicalResult run(StringRef lossFunction);

private:
  LogicalResult shardExpertGlobals();
  LogicalResult partitionFunction(func::FuncOp function, bool isLoss);
  LogicalResult partitionLayer(DispatchOp dispatch);
  /// Says which op the partition left invalid, and why that can happen.
  LogicalResult verifyPartitioned(func::FuncOp function);

  /// The constant 1/P, a scalar of `type`.
  Value rankShare(OpBuilder &b, Location loc, RankedTensorType type) {
    return arith::ConstantOp::create(
        b, loc, type,
        DenseElementsAttr::get(
            type, b.getFloatAttr(type.getElementType(), 1.0 / ranks)));
  }

  RankedTensorType withRows(Type type, int64_t rows) {
    auto tensor = cast<RankedTensorType>(type);
    SmallVector<int64_t> shape(tensor.getShape());
    shape[0] = rows;
    return tensor.clone(shape);
  }
  /// A part of `type` split `parts` ways along axis 0, or the whole of
  /// such a part.
  RankedTensorType part(Type type, int64_t parts) {
    return withRows(type, cast<RankedTensorType>(type).getDimSize(0) / parts);
  }
  RankedTensorType whole(Type type, int64_t parts) {
    return withRows(type, cast<RankedTensorType>(type).getDimSize(0) * parts);
  }
  /// A rank's part of the batch, and the whole batch from a rank's part.
  RankedTensorType local(Type type) { return part(type, ranks); }
  RankedTensorType whole(Type type) { return whole(type, ranks); }
  SmallVector<int16_t> batchAxes() const { return batchGridAxes(gridShape); }
  SmallVector<int16_t> expertAxes() const {
    return {expertGridAxis(gridShape)};
  }
  /// `value`'s rows from every rank, gathered once per value.
  Value gatherRows(OpBuilder &b, Location loc, Value value) {
    Value &gathered = gatheredRows[value];
    if (!gathered)
      gathered =
          shard::AllGatherOp::create(b, loc, whole(value.getType()), kGridName,
                                     batchAxes(), value, APInt(64, 0));
    return gathered;
  }
  /// The whole of expert weights from the ranks that share the experts.
  /// Collectives among the ranks that share the experts are left out when
  /// each rank holds them all: they would only copy.
  Value gatherExperts(OpBuilder &b, Location loc, Value weights) {
    if (expertRanks == 1)
      return weights;
    Value &gathered = gatheredRows[weights];
    if (!gathered)
      gathered = shard::AllGatherOp::create(
          b, loc, whole(weights.getType(), expertRanks), kGridName,
          expertAxes(), weights, APInt(64, 0));
    return gathered;
  }
  /// Runs to and from the ranks of their experts.
  Value exchangeRuns(OpBuilder &b, Location loc, Value runs) {
    if (expertRanks == 1)
      return runs;
    return shard::AllToAllOp::create(b, loc, runs.getType(), kGridName,
                                     expertAxes(), runs, APInt(64, 0),
                                     APInt(64, 0));
  }

  ModuleOp module;
  int64_t ranks;
  int64_t expertRanks;
  SmallVector<int64_t> gridShape;
  DenseSet<StringRef> expertGlobals;
  DenseMap<Value, Value> gatheredRows;
};

LogicalResult Partitioner::shardExpertGlobals() {
  // Expert weights are what the grouped FFNs (and the similarity) read.
  SymbolTable symbols(module);
  auto note = [&](Value weight) -> LogicalResult {
    auto load = weight.getDefiningOp<ml_program::GlobalLoadOp>();
    if (!load)
      return weight.getDefiningOp()
                 ? weight.getDefiningOp()->emitError(
                       "moe-expert-parallel: expert weights must be loaded "
                       "from globals")
                 : failure();
    expertGlobals.insert(load.getGlobal().getLeafReference());
    return success();
  };
  WalkResult walk = module.walk([&](Operation *op) {
    if (auto ffn = dyn_cast<ExpertFfnOp>(op))
      for (Value w : {ffn.getGateProj(), ffn.getUpProj(), ffn.getDownProj()})
        if (failed(note(w)))
          return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  for (StringRef name : expertGlobals) {
    auto global = symbols.lookup<ml_program::GlobalOp>(name);
    auto type = cast<RankedTensorType>(global.getType());
    if (type.getDimSize(0) % expertRanks != 0)
      return global.emitError()
             << "moe-expert-parallel: " << type.getDimSize(0)
             << " experts do not divide over " << expertRanks << " ranks";
    global.setTypeAttr(TypeAttr::get(part(type, expertRanks)));
    global->setAttr(
        kShardedAttrName,
        IntegerAttr::get(IntegerType::get(module.getContext(), 64), 0));
  }
  return success();
}

LogicalResult Partitioner::partitionLayer(DispatchOp dispatch) {
  auto gate = dispatch.getIndices().getDefiningOp<GateOp>();
  if (!gate)
    return dispatch.emitError("moe-expert-parallel: the dispatch's indices "
                              "must come from a moe.gate");
  if (dispatch.getPriority() && dispatch.getPriority() != gate.getWeights())
    return dispatch.emitError("moe-expert-parallel: a dispatch's priority "
                              "must be its gate's weights");
  Location loc = dispatch.getLoc();
  OpBuilder b(gate);
  b.setInsertionPointAfter(gate);
  // The gate of the whole batch, on every rank: the route's input and the
  // aux losses' and metrics'. An expanded normalization is repeated, so
  // that passes that change it change both gates.
  Value logits = gate.getLogits();
  auto norm = logits.getDefiningOp<GateNormOp>();
  Value wholeLogits = gatherRows(b, loc, norm ? norm.getLogits() : logits);
  if (norm) {
    auto wholeNorm = cast<GateNormOp>(b.clone(*norm));
    wholeNorm.getLogitsMutable().assign(wholeLogits);
    wholeNorm.getResult().setType(
        cast<RankedTensorType>(wholeLogits.getType()));
    wholeLogits = wholeNorm.getResult();
  }
  auto wholeGate = cast<GateOp>(b.clone(*gate));
  wholeGate.getLogitsMutable().assign(wholeLogits);
  for (OpResult result : wholeGate->getResults())
    result.setType(whole(result.getType()));

  b.setInsertionPoint(dispatch);
  auto bufferType = cast<RankedTensorType>(dispatch.getBuffer().getType());
  int64_t experts = bufferType.getDimSize(0);
  auto counts = RankedTensorType::get({ranks, experts}, b.getI64Type());
  auto route =
      RouteOp::create(b, loc, wholeGate.getIndices().getType(), counts,
                      dispatch.getDropped().getType(), wholeGate.getIndices(),
                      dispatch.getPriority() ? wholeGate.getWeights() : Value(),
                      b.getI64IntegerAttr(experts), b.getI64IntegerAttr(ranks),
                      dispatch.getCapacityFactorAttr());
  Value slots = shard::AllSliceOp::create(
      b, loc, local(dispatch.getSlots().getType()), kGridName, batchAxes(),
      route.getSlots(), APInt(64, 0));
  // A rank's run in an expert's queue holds at most its tokens (a token
  // picks an expert once) and at most the capacity.
  int64_t tokens =
      cast<RankedTensorType>(dispatch.getTokens().getType()).getDimSize(0);
  SmallVector<int64_t> runShape(bufferType.getShape());
  runShape[1] = std::min(runShape[1], tokens);
  auto runType = bufferType.clone(runShape);
  Value runs = PlaceOp::create(b, loc, runType, dispatch.getTokens(),
                               dispatch.getIndices(), slots);
  // Block q of the runs goes to rank q of the ranks that share the
  // experts, which holds its experts' runs from each of them.
  Value received = exchangeRuns(b, loc, runs);
  // The runs' lengths: the rows of the ranks that share the experts (the
  // replica's), the columns of this rank's experts.
  Value myCounts = route.getCounts();
  if (expertRanks != ranks)
    myCounts = shard::AllSliceOp::create(
        b, loc, RankedTensorType::get({expertRanks, experts}, b.getI64Type()),
        kGridName, replicaGridAxes(gridShape), myCounts, APInt(64, 0));
  if (expertRanks != 1)
    myCounts = shard::AllSliceOp::create(
        b, loc,
        RankedTensorType::get({expertRanks, experts / expertRanks},
                              b.getI64Type()),
        kGridName, expertAxes(), myCounts, APInt(64, 1));
  Value queue = MergeRunsOp::create(b, loc, part(bufferType, expertRanks),
                                    received, myCounts);
  copyOrigin(gate, wholeLogits.getDefiningOp());
  for (Operation &op :
       llvm::make_range(route->getIterator(),
                        std::next(queue.getDefiningOp()->getIterator())))
    copyOrigin(gate, &op);

  for (OpOperand &use :
       llvm::make_early_inc_range(dispatch.getBuffer().getUses())) {
    auto ffn = dyn_cast<ExpertFfnOp>(use.getOwner());
    if (!ffn)
      return use.getOwner()->emitError(
          "moe-expert-parallel: a dispatched buffer must feed moe.expert_ffn");
    use.set(queue);
    for (OpResult result : ffn->getResults())
      result.setType(part(result.getType(), expertRanks));
    // The outputs go back the same way: split into runs, each run to the
    // rank of its tokens.
    b.setInsertionPointAfter(ffn);
    Value outputRuns =
        SplitRunsOp::create(b, loc, runType, ffn.getResult(), myCounts);
    Value returned = exchangeRuns(b, loc, outputRuns);
    copyOrigin(gate, outputRuns.getDefiningOp());
    copyOrigin(gate, returned.getDefiningOp());
    ffn.getResult().replaceAllUsesExcept(returned, outputRuns.getDefiningOp());
  }
  // The rank's tokens' rows where they are read token by token, the whole
  // batch's where statistics are taken.
  for (OpOperand &use :
       llvm::make_early_inc_range(dispatch.getSlots().getUses()))
    use.set(isa<RoutingMetricsOp>(use.getOwner()) ? route.getSlots() : slots);
  dispatch.getDropped().replaceAllUsesWith(route.getDropped());
  for (auto [mine, all] :
       llvm::zip(gate->getResults(), wholeGate->getResults()))
    for (OpOperand &use : llvm::make_early_inc_range(mine.getUses()))
      if (isa<AuxLossOp, PooledAuxLossOp, RoutingMetricsOp>(use.getOwner()))
        use.set(all);
  dispatch.erase();
  return success();
}

LogicalResult Partitioner::partitionFunction(func::FuncOp function,
                                             bool isLoss) {
  if (failed(
          requireOneBlockBody(function, "moe-expert-parallel: ", "partition")))
    return failure();
  function->setAttr(kSpmdGridAttrName,
                    FlatSymbolRefAttr::get(module.getContext(), kGridName));
  Block &body = function.getBody().front();
  // The arguments are the batch; what is computed from them token by token
  // is split too, and what is not (from constants or globals) stays whole.
  DenseSet<Value> split;
  for (BlockArgument argument : body.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(argument.getType());
    if (!type || !type.hasStaticShape() || type.getRank() == 0 ||
        type.getDimSize(0) % ranks != 0)
      return mlir::emitError(argument.getLoc())
             << "moe-expert-parallel: argument #" << argument.getArgNumber()
             << " of type " << argument.getType() << " does not split over "
             << ranks << " ranks along its batch axis";
    argument.setType(local(type));
    split.insert(argument);
  }
  SmallVector<DispatchOp> dispatches;
  for (Operation &op : llvm::make_early_inc_range(body)) {
    if (auto load = dyn_cast<ml_program::GlobalLoadOp>(op)) {
      if (!expertGlobals.contains(load.getGlobal().getLeafReference()))
        continue;
      load.getResult().setType(part(load.getType(), expertRanks));
      // Weights read whole (the experts' similarity) are gathered.
      for (OpOperand &use : llvm::make_early_inc_range(load->getUses()))
        if (!isa<ExpertFfnOp, shard::AllGatherOp>(use.getOwner())) {
          OpBuilder b(load);
          b.setInsertionPointAfter(load);
          use.set(gatherExperts(b, load.getLoc(), load.getResult()));
        }
      continue;
    }
    if (auto dispatch = dyn_cast<DispatchOp>(op)) {
      dispatches.push_back(dispatch);
      continue;
    }
    if (isTokenWise(&op)) {
      // One that reads no split value computes the same on every rank.
      if (llvm::none_of(op.getOperands(),
                        [&](Value v) { return split.contains(v); }))
        continue;
      for (OpResult result : op.getResults()) {
        result.setType(local(result.getType()));
        split.insert(result);
      }
      // An expand_shape also states its output shape.
      if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op))
        expand.setStaticOutputShape(expand.getResultType().getShape());
      continue;
    }
    if (isa<ExpertFfnOp>(op) || isa<shard::AllGatherOp>(op) || isUnchanged(&op))
      continue;
    return op.emitError() << "moe-expert-parallel cannot partition '"
                          << op.getName() << "'";
  }
  for (DispatchOp dispatch : dispatches)
    if (failed(partitionLayer(dispatch)))
      return failure();
  // The loss's cross-entropy over counted targets divides by the whole
  // batch's count: its divisor becomes the ranks' sum, over P since the loss
  // is divided by P below.
  for (auto loss : body.getOps<CrossEntropyOp>()) {
    Value divisor = loss.getDivisor();
    if (!isLoss || !divisor)
      continue;
    // Only a count of the rank's own targets sums to the batch's.
    if (!divisor.getDefiningOp<CountTargetsOp>())
      return loss.emitError("moe-expert-parallel: the loss's cross-entropy "
                            "divisor must come from moe.count_targets, which "
                            "the ranks' counts sum up");
    OpBuilder b(loss);
    auto type = cast<RankedTensorType>(divisor.getType());
    Value total = shard::AllReduceOp::create(b, loss.getLoc(), type, kGridName,
                                             batchAxes(), divisor,
                                             shard::ReductionKind::Sum);
    loss.getDivisorMutable().assign(MulOp::create(
        b, loss.getLoc(), type, total, rankShare(b, loss.getLoc(), type)));
  }
  // The z-losses of the whole batch.
  for (auto zLoss : llvm::make_early_inc_range(body.getOps<ZLossOp>())) {
    OpBuilder b(zLoss);
    Value logits = gatherRows(b, zLoss.getLoc(), zLoss.getLogits());
    copyOrigin(zLoss, logits.getDefiningOp());
    zLoss.getLogitsMutable().assign(logits);
  }

  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (isLoss) {
    // Each rank's part of the loss is its loss over P: the local tokens'
    // mean cross-entropy averages to the batch's (a divided one was made
    // P times the rank's share above), and the replicated aux terms count
    // once. A cross-entropy returned beside it (lm_loss) sums the same way.
    OpBuilder b(ret);
    auto type = ret.getNumOperands() > 0
                    ? dyn_cast<RankedTensorType>(ret.getOperand(0).getType())
                    : RankedTensorType();
    if (!type || type.getRank() != 0 || !isa<FloatType>(type.getElementType()))
      return mlir::emitError(function.getLoc(),
                             "moe-expert-parallel: the loss function's first "
                             "result must be a scalar float loss");
    for (OpOperand &result : ret->getOpOperands()) {
      Value loss = result.get();
      if (result.getOperandNumber() != 0 &&
          !loss.getDefiningOp<CrossEntropyOp>())
        continue;
      auto lossType = cast<RankedTensorType>(loss.getType());
      Value share = MulOp::create(b, loss.getLoc(), lossType, loss,
                                  rankShare(b, loss.getLoc(), lossType));
      result.set(shard::AllReduceOp::create(b, loss.getLoc(), lossType,
                                            kGridName, batchAxes(), share,
                                            shard::ReductionKind::Sum));
    }
  }
  function.setType(FunctionType::get(
      module.getContext(), body.getArgumentTypes(), ret.getOperandTypes()));
  return success();
}

LogicalResult Partitioner::run(StringRef lossFunction) {
  if (ranks < 2)
    return module.emitError() << "moe-expert-parallel: ranks must be at "
                                 "least 2, got "
                              << ranks;
  if (expertRanks < 1 || ranks % expertRanks != 0)
    return module.emitError()
           << "moe-expert-parallel: expert-ranks must divide ranks (" << ranks
           << "), got " << expertRanks;
  gridShape = llvm::to_vector(moert::modelGridShape(ranks, expertRanks));
  if (module.lookupSymbol(kGridName))
    return module.emitError()
           << "moe-expert-parallel: the module already has a symbol @"
           << kGridName << ": is it partitioned already?";
  if (!module.lookupSymbol<func::FuncOp>(lossFunction))
    return module.emitError()
           << "moe-expert-parallel: no loss function @" << lossFunction;
  if (failed(shardExpertGlobals()))
    return failure();
  OpBuilder b(module.getBodyRegion());
  shard::GridOp::create(b, module.getLoc(), kGridName, gridShape);
  for (auto function : module.getOps<func::FuncOp>())
    if (failed(partitionFunction(function,
                                 function.getSymName() == lossFunction)) ||
        failed(verifyPartitioned(function)))
      return failure();
  return success();
}

LogicalResult Partitioner::verifyPartitioned(func::FuncOp function) {
  std::optional<BuiltIrError> error = firstVerifierError(function);
  if (!error)
    return success();
  // The input verified, so the split met a whole-batch value it cannot
  // split.
  return mlir::emitError(error->location)
         << "moe-expert-parallel: splitting the batch over " << ranks
         << " ranks leaves this op invalid (" << error->message
         << "): the pass splits @" << function.getSymName()
         << "'s arguments and what is computed from them, not a value of "
            "the batch's shape that a constant or a global gives";
}

/// What each kind of collective of `function` carries per rank and step.
void printTraffic(ModuleOp module, func::FuncOp function, int64_t ranks,
                  int64_t expertRanks) {
  // Per kind: calls, bytes in, bytes out.
  llvm::MapVector<StringRef, std::array<int64_t, 3>> kinds;
  function.walk([&](Operation *op) {
    if (!isa<shard::AllGatherOp, shard::AllReduceOp, shard::ReduceScatterOp,
             shard::AllToAllOp>(op))
      return;
    std::array<int64_t, 3> &kind = kinds[op->getName().getStringRef()];
    ++kind[0];
    kind[1] += byteSize(op->getOperand(0).getType());
    kind[2] += byteSize(op->getResult(0).getType());
  });
  int64_t replicated = 0, sharded = 0;
  for (auto global : module.getOps<ml_program::GlobalOp>())
    if (global->hasAttr(kTrainableAttrName))
      (global->hasAttr(kShardedAttrName) ? sharded : replicated) +=
          byteSize(global.getType());
  llvm::outs() << "moe-expert-parallel: " << ranks << " ranks";
  if (expertRanks == 1)
    llvm::outs() << " (data parallel: each holds every expert)";
  else if (expertRanks != ranks)
    llvm::outs() << " (" << ranks / expertRanks << " replicas of "
                 << expertRanks << " that share the experts)";
  llvm::outs() << "; per step and rank, the forward of @"
               << function.getSymName() << ":\n";
  for (auto &[name, kind] : kinds)
    llvm::outs() << "  " << name << ": " << kind[0] << " calls, " << kind[1]
                 << " bytes in, " << kind[2] << " bytes out\n";
  llvm::outs() << "  the backward: the same in reverse, and the all-reduce "
                  "of the replicated gradients, "
               << replicated << " bytes";
  if (expertRanks != ranks)
    llvm::outs() << ", and of the experts' over their replicas, " << sharded
                 << " bytes";
  llvm::outs() << "\n";
}

struct ExpertParallelPass : moe::impl::ExpertParallelBase<ExpertParallelPass> {
  using ExpertParallelBase::ExpertParallelBase;

  void runOnOperation() override {
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    ModuleOp module = getOperation();
    // It partitions the forward that moe-autodiff differentiates, with the
    // f32 expert weights that moe-mixed-precision converts.
    if (failed(requireRunsBefore(module, getArgument(),
                                 {"moe-autodiff", "moe-mixed-precision"})))
      return signalPassFailure();
    int64_t sharing = expertRanks == 0 ? ranks : expertRanks;
    if (failed(Partitioner(module, ranks, sharing).run(lossFunction)))
      return signalPassFailure();
    if (report)
      printTraffic(module, module.lookupSymbol<func::FuncOp>(lossFunction),
                   ranks, sharing);
  }
};

} // namespace
