//===- Autodiff.cpp - reverse-mode differentiation of a forward function --===//
//
// Builds the gradient function in three steps: clone the forward function;
// find the active values (those that depend on a trainable global and that
// the output depends on); walk the forward ops in reverse, asking each
// active op for its vector-Jacobian product and adding up the gradients of
// values with several uses. With recomputation, a layer's forward ops are
// cloned right before its backward and the VJPs are built from the clones,
// so the backward reads no activation of that layer from the forward.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/TrainingSettings.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::moe {
#define GEN_PASS_DEF_AUTODIFF
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

bool isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

Value zerosLike(OpBuilder &b, Location loc, Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return arith::ConstantOp::create(
      b, loc, tensor,
      DenseElementsAttr::get(tensor,
                             b.getFloatAttr(tensor.getElementType(), 0.0)));
}

class GradientBuilder {
public:
  GradientBuilder(func::FuncOp function, bool recompute)
      : function(function), recompute(recompute) {}

  LogicalResult build(bool cotangentArgument);

private:
  void findActiveValues(Value output, SymbolTableCollection &symbols);
  void accumulate(Value value, Value grad);
  /// The op whose VJP to build for forward op `op`: a recomputed clone when
  /// `op` belongs to a layer and recomputation is on, else `op` itself.
  Operation *vjpSource(Operation *op);

  func::FuncOp function;
  bool recompute;
  OpBuilder b{function.getContext()};
  DenseSet<Value> active;
  DenseMap<Value, Value> grads;
  SmallVector<Operation *> forwardOps;
  IRMapping recomputed;
  DenseSet<int64_t> recomputedLayers;
  /// The forward ops of each layer, in order (for recomputation).
  DenseMap<int64_t, SmallVector<Operation *>> layerOps;
};

void GradientBuilder::findActiveValues(Value output,
                                       SymbolTableCollection &symbols) {
  DenseSet<Value> varied;
  for (Operation *op : forwardOps) {
    bool fromParameter = false;
    if (auto load = dyn_cast<ml_program::GlobalLoadOp>(op)) {
      ml_program::GlobalOp global = load.getGlobalOp(symbols);
      fromParameter = global && global->hasAttr(kTrainableAttrName);
    }
    bool variedOperand = llvm::any_of(
        op->getOperands(), [&](Value v) { return varied.contains(v); });
    if (fromParameter || variedOperand)
      for (Value result : op->getResults())
        if (isFloatTensor(result.getType()))
          varied.insert(result);
  }
  DenseSet<Value> useful = {output};
  for (Operation *op : llvm::reverse(forwardOps))
    if (llvm::any_of(op->getResults(),
                     [&](Value v) { return useful.contains(v); }))
      useful.insert(op->operand_begin(), op->operand_end());
  for (Value value : varied)
    if (useful.contains(value))
      active.insert(value);
}

void GradientBuilder::accumulate(Value value, Value grad) {
  Value &slot = grads[value];
  slot = slot ? AddOp::create(b, grad.getLoc(), grad.getType(), slot, grad)
                    .getResult()
              : grad;
}

Operation *GradientBuilder::vjpSource(Operation *op) {
  std::optional<int64_t> layer = recompute ? getLayer(op) : std::nullopt;
  if (!layer)
    return op;
  if (recomputedLayers.insert(*layer).second)
    for (Operation *forwardOp : layerOps[*layer])
      b.clone(*forwardOp, recomputed)
          ->setAttr(kRecomputedAttrName, b.getUnitAttr());
  return recomputed.lookup(op);
}

LogicalResult GradientBuilder::build(bool cotangentArgument) {
  Block &body = function.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() == 0 || !isFloatTensor(ret.getOperand(0).getType()))
    return function.emitError()
           << "moe-autodiff: the first result must be a float tensor to "
              "differentiate";
  Value output = ret.getOperand(0);
  // The forward's other results (metrics) pass through after the gradients.
  SmallVector<std::pair<Value, std::string>> passThrough;
  for (unsigned i = 1; i < ret.getNumOperands(); ++i) {
    auto name = function.getResultAttrOfType<StringAttr>(i, kOutputAttrName);
    passThrough.push_back(
        {ret.getOperand(i), name ? name.str() : "result" + std::to_string(i)});
  }
  for (Operation &op : body.without_terminator()) {
    forwardOps.push_back(&op);
    if (std::optional<int64_t> layer = recompute ? getLayer(&op) : std::nullopt)
      layerOps[*layer].push_back(&op);
  }

  b.setInsertionPoint(ret);
  Location loc = function.getLoc();
  Value seed;
  if (cotangentArgument) {
    seed = body.addArgument(output.getType(), loc);
  } else {
    auto type = cast<RankedTensorType>(output.getType());
    if (type.getRank() != 0)
      return function.emitError()
             << "moe-autodiff: the first result must be a scalar loss, got "
             << type << " (use cotangent-argument for a non-scalar output)";
    seed = arith::ConstantOp::create(
        b, loc, type,
        DenseElementsAttr::get(type,
                               b.getFloatAttr(type.getElementType(), 1.0)));
  }
  // A loss all-reduced over the ranks of an SPMD program is the sum of the
  // ranks' parts, counted once: each rank differentiates its part.
  Value differentiated = output;
  if (auto reduce = output.getDefiningOp<shard::AllReduceOp>())
    if (reduce.getReduction() == shard::ReductionKind::Sum)
      differentiated = reduce.getInput();
  grads[differentiated] = seed;

  SymbolTableCollection symbols;
  findActiveValues(differentiated, symbols);

  for (Operation *op : llvm::reverse(forwardOps)) {
    if (isa<ml_program::GlobalLoadOp>(op) ||
        llvm::none_of(op->getResults(),
                      [&](Value v) { return grads.count(v); }))
      continue;
    auto differentiable = dyn_cast<DifferentiableOpInterface>(op);
    if (!differentiable) {
      InFlightDiagnostic error =
          op->emitError() << "'" << op->getName()
                          << "' is on the path from a trainable global to "
                             "the output but is not differentiable";
      if (isa<FusedElementwiseOp>(op))
        error << " (moe-fuse-elementwise made it: moe-autodiff runs before "
                 "code generation)";
      return error;
    }
    SmallVector<Value> resultGrads;
    for (Value result : op->getResults()) {
      Value grad = grads.lookup(result);
      if (!grad && isFloatTensor(result.getType()))
        grad = zerosLike(b, op->getLoc(), result.getType());
      resultGrads.push_back(grad);
    }
    SmallVector<Value> operandGrads;
    Operation *lastBefore = ret->getPrevNode();
    if (failed(cast<DifferentiableOpInterface>(vjpSource(op))
                   .buildVjp(b, resultGrads, operandGrads)))
      return failure();
    // The backward of a layer's op belongs to that layer too.
    for (Operation *built = lastBefore ? lastBefore->getNextNode()
                                       : &body.front();
         built != ret; built = built->getNextNode())
      if (!built->hasAttr(kLayerAttrName))
        copyOrigin(op, built);
    for (auto [operand, grad] :
         llvm::zip_equal(op->getOperands(), operandGrads))
      if (grad && active.contains(operand))
        accumulate(operand, grad);
  }

  // A global's gradient is the sum over its loads, in declaration order;
  // in an SPMD program, a replicated global's is also summed over the ranks,
  // and a sharded one's over the replicas of its part.
  auto gridName = function->getAttrOfType<FlatSymbolRefAttr>(kSpmdGridAttrName);
  shard::GridOp grid;
  if (gridName) {
    grid =
        SymbolTable::lookupNearestSymbolFrom<shard::GridOp>(function, gridName);
    if (!grid)
      return function.emitError() << "moe-autodiff: no shard.grid " << gridName;
  }
  SmallVector<Value> results = {output};
  SmallVector<std::string> names = {"loss"};
  if (auto name = function.getResultAttrOfType<StringAttr>(0, kOutputAttrName))
    names[0] = name.str();
  ModuleOp module = function->getParentOfType<ModuleOp>();
  // The gradients of each global's loads, in forward order.
  DenseMap<StringAttr, SmallVector<Value>> loadGradients;
  for (Operation *op : forwardOps)
    if (auto load = dyn_cast<ml_program::GlobalLoadOp>(op))
      if (Value grad = grads.lookup(load.getResult()))
        loadGradients[load.getGlobal().getLeafReference()].push_back(grad);
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    if (!global->hasAttr(kTrainableAttrName))
      continue;
    Value total;
    for (Value grad : loadGradients.lookup(global.getSymNameAttr()))
      total =
          total ? AddOp::create(b, loc, grad.getType(), total, grad).getResult()
                : grad;
    SmallVector<int16_t> axes;
    if (grid)
      axes =
          parameterCopyAxes(grid.getShape(), global->hasAttr(kShardedAttrName));
    if (total && !axes.empty())
      total = shard::AllReduceOp::create(b, loc, total.getType(),
                                         gridName.getValue(), axes, total,
                                         shard::ReductionKind::Sum);
    results.push_back(total ? total : zerosLike(b, loc, global.getType()));
    names.push_back(gradientOutputName(global.getSymName()));
  }
  for (auto &[value, name] : passThrough) {
    results.push_back(value);
    names.push_back(name);
  }
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();

  function.setType(FunctionType::get(function.getContext(),
                                     body.getArgumentTypes(),
                                     ValueRange(results).getTypes()));
  setOutputNames(function, names);
  if (cotangentArgument)
    function.setArgAttrs(body.getNumArguments() - 1,
                         b.getDictionaryAttr(b.getNamedAttr(
                             kInputAttrName, b.getStringAttr("cotangent"))));

  // Drop what the output no longer needs (e.g. gradients of ids' tables
  // nobody asked for, or forward values only the recomputation replaced).
  IRRewriter rewriter(function.getContext());
  (void)runRegionDCE(rewriter, function.getBody());
  return success();
}

struct AutodiffPass : moe::impl::AutodiffBase<AutodiffPass> {
  using AutodiffBase::AutodiffBase;

  void runOnOperation() override {
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(functionName);
    if (!forward) {
      module.emitError() << "moe-autodiff: no function @" << functionName;
      return signalPassFailure();
    }
    if (gradientFunctionName.empty()) {
      module.emitError("moe-autodiff: gradient-function must name a function");
      return signalPassFailure();
    }
    if (Operation *existing = module.lookupSymbol(gradientFunctionName)) {
      existing->emitError()
          << "moe-autodiff: @" << gradientFunctionName << " already exists";
      return signalPassFailure();
    }
    if (failed(requireOneBlockBody(forward, "moe-autodiff: ", "differentiate")))
      return signalPassFailure();
    // The gradient GEMMs of a mixed-precision program read bf16 copies of
    // f32 cotangents, which moe-mixed-precision writes after this pass.
    WalkResult narrowed = forward.walk([&](arith::TruncFOp truncate) {
      truncate.emitError("moe-autodiff differentiates f32 and f64 programs; "
                         "run moe-mixed-precision after it");
      return WalkResult::interrupt();
    });
    if (narrowed.wasInterrupted())
      return signalPassFailure();
    // A forward computes; it neither updates state (recomputed layers
    // would read the update) nor holds a backward of its own.
    WalkResult notForward = forward.walk([&](Operation *op) {
      if (!isa<ml_program::GlobalStoreOp>(op) &&
          !op->hasTrait<moe::OpTrait::Backward>() &&
          !op->hasTrait<moe::OpTrait::OptimizerStep>())
        return WalkResult::advance();
      op->emitError() << "moe-autodiff: @" << functionName
                      << " must be a forward, but '" << op->getName() << "' "
                      << (isa<ml_program::GlobalStoreOp>(op)
                              ? "updates state"
                              : "belongs to a backward or an optimizer step")
                      << " (moe-autodiff runs before moe-optimizer and "
                         "moe-adaptive-aux)";
      return WalkResult::interrupt();
    });
    if (notForward.wasInterrupted())
      return signalPassFailure();
    OpBuilder b(forward);
    b.setInsertionPointAfter(forward);
    auto gradient = cast<func::FuncOp>(b.clone(*forward));
    gradient.setSymName(gradientFunctionName);
    if (failed(GradientBuilder(gradient, recompute).build(cotangentArgument)))
      return signalPassFailure();
    recordTrainingSettings(*this, module);
  }
};

} // namespace
