//===- ProgramCost.cpp - a train step's costs by pipeline slot ------------===//

#include "moe/Analysis/ProgramCost.h"

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

std::optional<int64_t> layerOf(Operation *op) {
  if (auto layer = op->getAttrOfType<IntegerAttr>(kLayerAttrName))
    return layer.getInt();
  return std::nullopt;
}

bool isGradientSync(Operation *op) {
  if (!isa<shard::AllReduceOp, shard::ReduceScatterOp>(op))
    return false;
  return llvm::any_of(op->getUsers(), [](Operation *user) {
    return isa<AdamWOp, GlobalNormOp, func::ReturnOp>(user);
  });
}

/// The load of `update`'s parameter, seen through the distributed
/// optimizer's slice of it (flat, padded), or null.
ml_program::GlobalLoadOp parameterLoad(AdamWOp update) {
  Value param = update.getParam();
  if (auto part = param.getDefiningOp<shard::AllSliceOp>())
    param = part.getInput();
  if (auto padded = param.getDefiningOp<tensor::PadOp>())
    param = padded.getSource();
  if (auto flat = param.getDefiningOp<tensor::CollapseShapeOp>())
    param = flat.getSrc();
  return param.getDefiningOp<ml_program::GlobalLoadOp>();
}

} // namespace

FailureOr<ProgramCost> mlir::moe::analyzeTrainStep(func::FuncOp trainStep) {
  ProgramCost program;
  Block &body = trainStep.getBody().front();
  for (Operation &op : body)
    if (std::optional<int64_t> layer = layerOf(&op))
      program.numLayers = std::max(program.numLayers, *layer + 1);
  size_t lastSlot = program.numLayers + 1;
  program.slots.resize(lastSlot + 1);
  if (auto gridName =
          trainStep->getAttrOfType<FlatSymbolRefAttr>(kSpmdGridAttrName)) {
    auto grid = SymbolTable::lookupNearestSymbolFrom<shard::GridOp>(trainStep,
                                                                    gridName);
    if (grid) {
      program.ranks = ShapedType::getNumElements(grid.getShape());
      program.expertRanks = grid.getShape()[expertGridAxis(grid.getShape())];
    }
  }

  // Phases follow program order: the forward, then the backward from its
  // first gradient op, then the optimizer. Unlayered ops go to the slot
  // before the layers (embedding) or after them (head, loss) by whether a
  // layered op of their phase came first; the backward runs the layers in
  // reverse.
  Phase phase = Phase::Forward;
  bool layerSeen = false;
  llvm::DenseMap<Operation *, std::pair<Phase, size_t>> placement;
  llvm::StringMap<size_t> globalSlots;
  for (Operation &op : body) {
    if (op.hasTrait<OpTrait::OptimizerStep>()) {
      phase = Phase::Optimizer;
    } else if (op.hasTrait<OpTrait::Backward>() && phase == Phase::Forward) {
      phase = Phase::Backward;
      layerSeen = false;
    }
    std::optional<int64_t> layer = layerOf(&op);
    layerSeen |= layer.has_value();
    bool beforeLayers = phase == Phase::Backward ? layerSeen : !layerSeen;
    size_t slot = layer ? *layer + 1 : beforeLayers ? 0 : lastSlot;
    // A parameter belongs to the slot of its first forward use, and so
    // does its update.
    if (phase == Phase::Forward && !isa<ml_program::GlobalLoadOp>(op))
      for (Value operand : op.getOperands())
        if (auto load = operand.getDefiningOp<ml_program::GlobalLoadOp>())
          globalSlots.try_emplace(load.getGlobal().getLeafReference(), slot);
    if (auto adamw = dyn_cast<AdamWOp>(op))
      if (auto load = parameterLoad(adamw))
        slot = globalSlots.lookup(load.getGlobal().getLeafReference());
    placement[&op] = {phase, slot};
  }

  QueueFill fill(body);
  for (Operation &op : body) {
    auto [opPhase, slot] = placement.lookup(&op);
    FailureOr<OpCost> cost = getOpCost(&op, fill);
    if (failed(cost))
      return failure();
    bool gradientSync = isGradientSync(&op);
    // A gradient's reduction belongs with its parameter's update.
    if (gradientSync)
      for (Operation *user : op.getUsers())
        if (isa<AdamWOp>(user))
          slot = placement.lookup(user).second;
    if (cost->kind != OpCost::Kind::Free)
      program.ops.push_back(
          {*cost, opPhase, slot, gradientSync, isa<AdamWOp>(op)});
    // Forward values the backward reads stay alive until it does.
    if (opPhase != Phase::Forward || isa<ml_program::GlobalLoadOp>(op))
      continue;
    for (Value result : op.getResults())
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return placement.lookup(user).first == Phase::Backward;
          }))
        program.slots[slot].savedActivationBytes +=
            tensorBytes(result.getType()) * fill.of(result);
  }

  // Parameters by slot; expert weights are those expert_ffn reads (through
  // a bf16 copy in mixed precision).
  llvm::StringSet<> expertWeights;
  trainStep.walk([&](ExpertFfnOp ffn) {
    for (Value weight :
         {ffn.getGateProj(), ffn.getUpProj(), ffn.getDownProj()}) {
      if (auto load =
              beforeBf16Copy(weight).getDefiningOp<ml_program::GlobalLoadOp>())
        expertWeights.insert(load.getGlobal().getLeafReference());
    }
  });
  auto module = trainStep->getParentOfType<ModuleOp>();
  module.walk([&](ml_program::GlobalOp global) {
    if (!global->hasAttr(kTrainableAttrName))
      return;
    auto slot = globalSlots.find(global.getSymName());
    if (slot == globalSlots.end())
      return;
    auto type = cast<ShapedType>(global.getType());
    double elements = static_cast<double>(type.getNumElements());
    SlotCost &cost = program.slots[slot->second];
    (expertWeights.contains(global.getSymName()) ? cost.expertParams
                                                 : cost.denseParams) +=
        elements;
  });
  return program;
}
