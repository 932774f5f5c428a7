//===- MixedPrecision.cpp - bf16 GEMM operands, f32 everything else ------===//
//
// The pass only narrows operands: a GEMM op over bf16 operands already means
// f32 accumulation and an f32 result (gemmResultType), so no result type
// changes and no conversion back is needed.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MIXEDPRECISION
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// What tells the gradient GEMMs of moe.linear from those of moe.router
/// (both moe.linear_input_grad and moe.linear_weight_grad): the linears'
/// inputs and weights, the routers' weights, and the routers' logit
/// cotangents (what their input gradients read).
struct GemmOrigins {
  DenseSet<Value> linearInputs, linearWeights, routerWeights, routerCotangents;

  explicit GemmOrigins(func::FuncOp function) {
    function.walk([&](LinearOp linear) {
      linearInputs.insert(linear.getInput());
      linearWeights.insert(linear.getWeight());
    });
    function.walk(
        [&](RouterOp router) { routerWeights.insert(router.getWeight()); });
    function.walk([&](LinearInputGradOp grad) {
      if (routerWeights.contains(grad.getWeight()))
        routerCotangents.insert(grad.getDResult());
    });
  }
};

/// The operands of `op` that a narrowed GEMM reads; empty for an op without
/// GEMMs and for the router's gradient GEMMs, which stay f32. The expert
/// FFN's `projections` are its result, not an operand: the pass gives them
/// bf16.
SmallVector<unsigned> gemmOperands(Operation *op, const GemmOrigins &origins) {
  return llvm::TypeSwitch<Operation *, SmallVector<unsigned>>(op)
      .Case([](LinearOp) {
        return SmallVector<unsigned>{0, 1};
      })
      .Case([&](LinearInputGradOp o) {
        if (!origins.linearWeights.contains(o.getWeight()) ||
            origins.routerWeights.contains(o.getWeight()))
          return SmallVector<unsigned>{};
        return SmallVector<unsigned>{0, 1};
      })
      .Case([&](LinearWeightGradOp o) {
        if (!origins.linearInputs.contains(o.getInput()) ||
            origins.routerCotangents.contains(o.getDResult()))
          return SmallVector<unsigned>{};
        return SmallVector<unsigned>{0, 1};
      })
      .Case([](ExpertFfnOp) {
        return SmallVector<unsigned>{0, 1, 2, 3};
      })
      .Case([](ExpertFfnGradOp o) {
        return SmallVector<unsigned>{0, 1, 2, 3,
                                     o.getDResultMutable().getOperandNumber()};
      })
      .Default([](Operation *) { return SmallVector<unsigned>{}; });
}

struct MixedPrecisionPass : moe::impl::MixedPrecisionBase<MixedPrecisionPass> {
  using MixedPrecisionBase::MixedPrecisionBase;

  void runOnOperation() override {
    if (dtype != "bf16") {
      getOperation().emitError()
          << "moe-mixed-precision: dtype must be bf16, got '" << dtype << "'";
      return signalPassFailure();
    }
    auto result = getOperation().walk(
        [&](func::FuncOp function) { return narrowGemmOperands(function); });
    if (result.wasInterrupted())
      signalPassFailure();
  }

  WalkResult narrowGemmOperands(func::FuncOp function) {
    Type bf16 = BFloat16Type::get(&getContext());
    // An activation gets one bf16 copy, right after its definition, that
    // its forward and backward GEMMs share: the backward keeps it instead
    // of the f32 value. A weight gets a copy right before each GEMM: copies
    // kept from the forward to the backward would hold 2 bytes a parameter
    // for the whole step (570 MB for the small config), more than bf16
    // activations save, for the price of reading the f32 weight again.
    DenseMap<std::pair<Value, Operation *>, Value> narrowed;
    auto narrow = [&](Value value, Operation *user) {
      Operation *definition = value.getDefiningOp();
      bool weight = isa_and_nonnull<ml_program::GlobalLoadOp>(definition);
      auto [entry, inserted] =
          narrowed.try_emplace({value, weight ? user : nullptr});
      if (!inserted)
        return entry->second;
      OpBuilder builder(&getContext());
      if (weight)
        builder.setInsertionPoint(user);
      else if (definition)
        builder.setInsertionPointAfter(definition);
      else
        builder.setInsertionPointToStart(value.getParentBlock());
      auto type = cast<RankedTensorType>(value.getType()).clone(bf16);
      auto truncate =
          arith::TruncFOp::create(builder, value.getLoc(), type, value);
      if (Operation *source = weight ? user : definition)
        copyLayer(source, truncate);
      entry->second = truncate.getResult();
      return entry->second;
    };
    GemmOrigins origins(function);
    return function.walk([&](Operation *op) {
      for (unsigned index : gemmOperands(op, origins)) {
        Value operand = op->getOperand(index);
        Type element = getElementTypeOrSelf(operand.getType());
        if (element.isBF16())
          continue;
        if (!element.isF32()) {
          op->emitOpError() << "moe-mixed-precision narrows f32 programs, "
                               "but operand #"
                            << index << " is " << operand.getType();
          return WalkResult::interrupt();
        }
        op->setOperand(index, narrow(operand, op));
      }
      // The expert FFN keeps its projections in its operands' type: bf16.
      if (auto experts = dyn_cast<ExpertFfnOp>(op))
        experts.getProjections().setType(
            cast<RankedTensorType>(experts.getProjections().getType())
                .clone(bf16));
      return WalkResult::advance();
    });
  }
};

} // namespace
