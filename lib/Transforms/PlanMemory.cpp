//===- PlanMemory.cpp - static liveness-based arena planning --------------===//
//
// Every step of a training run has the same shapes, so the memory of a step
// is planned once, at compile time: a linear scan over the ops of a function
// assigns each value an arena offset when it is defined and returns its
// block to a free list after its last use. Emitters then address buffers as
// `arena + offset` with no allocation at run time.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"

#include "llvm/Support/Format.h"

#include <map>

namespace mlir::moe {
#define GEN_PASS_DEF_PLANMEMORY
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

int64_t alignUp(int64_t bytes, int64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

/// First-fit allocation over a free list of [offset, size) blocks.
class Arena {
public:
  explicit Arena(int64_t alignment) : alignment(alignment) {}

  int64_t allocate(int64_t bytes) {
    bytes = alignUp(std::max<int64_t>(bytes, 1), alignment);
    for (auto it = free.begin(); it != free.end(); ++it) {
      if (it->second < bytes)
        continue;
      int64_t offset = it->first, remaining = it->second - bytes;
      free.erase(it);
      if (remaining > 0)
        free[offset + bytes] = remaining;
      return offset;
    }
    // Grow the arena, reusing a free block that ends at its top.
    int64_t offset = top;
    if (!free.empty()) {
      auto last = std::prev(free.end());
      if (last->first + last->second == top) {
        offset = last->first;
        free.erase(last);
      }
    }
    top = offset + bytes;
    return offset;
  }

  void release(int64_t offset, int64_t bytes) {
    bytes = alignUp(std::max<int64_t>(bytes, 1), alignment);
    auto [it, inserted] = free.emplace(offset, bytes);
    // Merge with the neighbours so that large blocks can be reused.
    auto next = std::next(it);
    if (next != free.end() && offset + bytes == next->first) {
      it->second += next->second;
      free.erase(next);
    }
    if (it != free.begin()) {
      auto previous = std::prev(it);
      if (previous->first + previous->second == it->first) {
        previous->second += it->second;
        free.erase(it);
      }
    }
  }

  int64_t size() const { return top; }

private:
  int64_t alignment;
  std::map<int64_t, int64_t> free;
  int64_t top = 0;
};

struct FunctionPlan {
  int64_t arenaBytes = 0;
  int64_t peakActivationBytes = 0;
  int64_t peakGradientBytes = 0;
};

/// The plan of `function`, or failure (reported) when its arena would
/// exceed kMaxPlanBytes.
FailureOr<FunctionPlan> planFunction(func::FuncOp function, int64_t alignment) {
  Block &body = function.getBody().front();
  DenseMap<Operation *, int64_t> position;
  for (Operation &op : body)
    position[&op] = position.size();

  // The value a value's storage belongs to (reshapes alias their operand),
  // and the last position at which that storage is read.
  DenseMap<Value, Value> storageOf;
  auto root = [&](Value value) {
    auto it = storageOf.find(value);
    return it == storageOf.end() ? value : it->second;
  };
  DenseMap<Value, int64_t> lastUse;
  for (Operation &op : body) {
    if (Value source = viewSource(&op))
      storageOf[op.getResult(0)] = root(source);
    for (Value operand : op.getOperands())
      lastUse[root(operand)] = std::max(lastUse[root(operand)], position[&op]);
  }

  // Values stored in place into globals need no arena buffer. Their op
  // overwrites the globals, so every load of them before its stores must be
  // dead by then (a load after them reads the new value, which is where it
  // would be either way).
  for (Operation &op : body) {
    SmallVector<StringRef> targets = inPlaceGlobals(&op);
    if (targets.empty())
      continue;
    // Its users are its stores (inPlaceGlobals).
    int64_t lastStore = 0;
    for (Operation *store : op.getUsers())
      lastStore = std::max(lastStore, position[store]);
    bool loadsDead = true;
    for (Operation &other : body)
      if (auto load = dyn_cast<ml_program::GlobalLoadOp>(other))
        if (llvm::is_contained(targets, load.getGlobal().getLeafReference()) &&
            position[&other] < lastStore &&
            lastUse.lookup(load.getResult()) > position[&op])
          loadsDead = false;
    if (loadsDead)
      op.setAttr(kInPlaceAttrName, UnitAttr::get(op.getContext()));
  }

  // A load read after a store to its global (a metric reporting the value
  // the step started from) cannot point into the state: it gets a copy.
  DenseSet<Operation *> copiedLoads;
  for (Operation &op : body)
    if (auto store = dyn_cast<ml_program::GlobalStoreOp>(op))
      for (Operation &other : body)
        if (auto load = dyn_cast<ml_program::GlobalLoadOp>(other))
          if (load.getGlobal() == store.getGlobal() &&
              position[&other] < position[&op] &&
              lastUse.lookup(load.getResult()) > position[&op])
            copiedLoads.insert(load);

  Arena arena(alignment);
  FunctionPlan plan;
  DenseMap<Value, int64_t> offsets;
  DenseSet<Value> gradients;
  int64_t liveActivations = 0, liveGradients = 0;
  // Buffers to release once the op at the given position has run.
  std::map<int64_t, SmallVector<Value>> releases;
  Builder builder(function.getContext());
  for (Operation &op : body) {
    bool needsArena = (!isa<ml_program::GlobalLoadOp, ml_program::GlobalStoreOp,
                            arith::ConstantOp, func::ReturnOp>(op) &&
                       !viewSource(&op) && !op.hasAttr(kInPlaceAttrName)) ||
                      copiedLoads.contains(&op);
    bool backward = op.hasTrait<moe::OpTrait::Backward>() ||
                    (!op.hasTrait<moe::OpTrait::OptimizerStep>() &&
                     llvm::any_of(op.getOperands(), [&](Value v) {
                       return gradients.contains(root(v));
                     }));
    SmallVector<int64_t> resultOffsets;
    for (Value result : op.getResults()) {
      if (!needsArena) {
        resultOffsets.push_back(-1);
        continue;
      }
      int64_t bytes = byteSize(result.getType());
      int64_t offset = arena.allocate(bytes);
      if (arena.size() > kMaxPlanBytes)
        return op.emitError()
               << "moe-plan-memory: @" << function.getSymName()
               << "'s arena would exceed " << kMaxPlanBytes
               << " bytes (2^56) with this result of " << bytes << " bytes";
      offsets[result] = offset;
      resultOffsets.push_back(offset);
      if (backward) {
        gradients.insert(result);
        liveGradients += bytes;
      } else {
        liveActivations += bytes;
      }
      // A result nobody reads is released right after its op.
      releases[std::max(lastUse.lookup(result), position[&op])].push_back(
          result);
    }
    if (op.getNumResults() > 0 && !isa<func::ReturnOp>(op))
      op.setAttr(kArenaOffsetsAttrName,
                 builder.getDenseI64ArrayAttr(resultOffsets));
    plan.peakActivationBytes =
        std::max(plan.peakActivationBytes, liveActivations);
    plan.peakGradientBytes = std::max(plan.peakGradientBytes, liveGradients);
    for (Value value : releases[position[&op]]) {
      int64_t bytes = byteSize(value.getType());
      arena.release(offsets[value], bytes);
      (gradients.contains(value) ? liveGradients : liveActivations) -= bytes;
    }
  }
  plan.arenaBytes = arena.size();
  function->setAttr(kArenaBytesAttrName,
                    builder.getI64IntegerAttr(plan.arenaBytes));
  return plan;
}

struct PlanMemoryPass : moe::impl::PlanMemoryBase<PlanMemoryPass> {
  using PlanMemoryBase::PlanMemoryBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t parameterBytes = 0, stateBytes = 0;
    for (auto global : module.getOps<ml_program::GlobalOp>()) {
      (global->hasAttr(kTrainableAttrName) ? parameterBytes : stateBytes) +=
          byteSize(global.getType());
      if (parameterBytes + stateBytes > kMaxPlanBytes) {
        global.emitError() << "moe-plan-memory: the globals up to this one "
                              "take more than "
                           << kMaxPlanBytes << " bytes (2^56)";
        return signalPassFailure();
      }
    }
    // The planner and the emitters read the alignment from one place.
    TargetAttr target = getModuleTarget(module);
    module->setAttr(kTargetAttrName, target);
    for (auto function : module.getOps<func::FuncOp>()) {
      if (failed(requireOneBlockBody(function, "moe-plan-memory: ", "plan")))
        return signalPassFailure();
      for (Type type : function.getArgumentTypes())
        if (!isa<RankedTensorType>(type) ||
            !cast<RankedTensorType>(type).hasStaticShape()) {
          function.emitError("moe-plan-memory: arguments must be static "
                             "tensors");
          return signalPassFailure();
        }
      FailureOr<FunctionPlan> planned =
          planFunction(function, target.getAlignment());
      if (failed(planned))
        return signalPassFailure();
      FunctionPlan plan = *planned;
      if (report)
        llvm::outs() << "moe-plan-memory @" << function.getSymName()
                     << ": arena " << plan.arenaBytes
                     << " bytes (peak activations " << plan.peakActivationBytes
                     << ", peak gradients " << plan.peakGradientBytes
                     << "), parameters " << parameterBytes
                     << " bytes, training state " << stateBytes << " bytes\n";
    }
  }
};

} // namespace
