//===- MixedPrecision.cpp - bf16 GEMM operands and stored activations ----===//
//
// The pass only changes operands: a GEMM op over bf16 operands already means
// f32 accumulation and an f32 result (gemmResultType), so no result type
// changes and no conversion back is needed; the other ops read stored
// activations widened back to f32 right before them.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/TrainingSettings.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include <tuple>

namespace mlir::moe {
#define GEN_PASS_DEF_MIXEDPRECISION
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Weights known by their global, so that the loads of a layer recomputed
/// in the backward are the same weights as the forward's.
class WeightSet {
public:
  void insert(Value weight) {
    if (auto load = weight.getDefiningOp<ml_program::GlobalLoadOp>())
      globals.insert(load.getGlobalAttr());
    else
      values.insert(weight);
  }
  bool contains(Value weight) const {
    if (auto load = weight.getDefiningOp<ml_program::GlobalLoadOp>())
      return globals.contains(load.getGlobalAttr());
    return values.contains(weight);
  }

private:
  DenseSet<Attribute> globals;
  DenseSet<Value> values;
};

/// What tells the gradient GEMMs of moe.router from those of moe.linear
/// (both moe.linear_input_grad and moe.linear_weight_grad): the routers'
/// weights, and the routers' logit cotangents, which their input gradients
/// read, as do their weight gradients. A router whose input has no gradient
/// has no input gradient either: its weight gradient is told by reading the
/// router's input, unless a linear reads that input too.
struct RouterGradients {
  WeightSet weights;
  DenseSet<Value> inputs, cotangents;

  explicit RouterGradients(func::FuncOp function) {
    function.walk([&](RouterOp router) {
      weights.insert(router.getWeight());
      inputs.insert(router.getTokens());
    });
    function.walk([&](LinearOp linear) { inputs.erase(linear.getInput()); });
    function.walk([&](LinearInputGradOp grad) {
      if (weights.contains(grad.getWeight()))
        cotangents.insert(grad.getDResult());
    });
  }
  bool isInputGrad(LinearInputGradOp grad) const {
    return weights.contains(grad.getWeight());
  }
  bool isWeightGrad(LinearWeightGradOp grad) const {
    return cotangents.contains(grad.getDResult()) ||
           inputs.contains(grad.getInput());
  }
};

/// The operands of `op` that a narrowed GEMM reads; empty for an op without
/// GEMMs and for the router's gradient GEMMs, which stay f32. The expert
/// FFN's `projections` are its result, not an operand: the pass gives them
/// bf16. With expertWeightsInKernels (weight-copies=per-expert) the expert
/// ops' weights are not among them: their kernels read them in f32 and
/// round each expert's part as its GEMMs read it.
SmallVector<unsigned> gemmOperands(Operation *op, const RouterGradients &router,
                                   bool expertWeightsInKernels) {
  return llvm::TypeSwitch<Operation *, SmallVector<unsigned>>(op)
      .Case([](LinearOp) {
        return SmallVector<unsigned>{0, 1};
      })
      .Case([&](LinearInputGradOp o) {
        if (router.isInputGrad(o))
          return SmallVector<unsigned>{};
        return SmallVector<unsigned>{0, 1};
      })
      .Case([&](LinearWeightGradOp o) {
        if (router.isWeightGrad(o))
          return SmallVector<unsigned>{};
        return SmallVector<unsigned>{0, 1};
      })
      .Case([](AttentionOp) {
        return SmallVector<unsigned>{0, 1, 2};
      })
      // The forward's output too, which d_result multiplies; not its lse.
      .Case([](AttentionGradOp) {
        return SmallVector<unsigned>{0, 1, 2, 3, 5};
      })
      // As attention_grad's, the two it multiplies.
      .Case([](AttentionSinksGradOp) {
        return SmallVector<unsigned>{2, 3};
      })
      .Case([&](ExpertFfnOp) {
        if (expertWeightsInKernels)
          return SmallVector<unsigned>{0};
        return SmallVector<unsigned>{0, 1, 2, 3};
      })
      .Case([&](ExpertFfnGradOp o) {
        unsigned dResult = o.getDResultMutable().getOperandNumber();
        if (expertWeightsInKernels)
          return SmallVector<unsigned>{0, dResult};
        return SmallVector<unsigned>{0, 1, 2, 3, dResult};
      })
      .Default([](Operation *) { return SmallVector<unsigned>{}; });
}

/// The operands of a gradient op that read forward activations which no
/// GEMM reads: RMSNorm's input (the residual stream), SwiGLU's inputs, the
/// experts' outputs and the shared expert's. They are kept for
/// the backward as bf16 copies and widened right before the op, which
/// computes in f32 as before.
SmallVector<OpOperand *> storedActivations(Operation *op) {
  return llvm::TypeSwitch<Operation *, SmallVector<OpOperand *>>(op)
      .Case([](RmsNormGradOp o) {
        return SmallVector<OpOperand *>{&o.getInputMutable()};
      })
      .Case([](SwigluGradOp o) {
        return SmallVector<OpOperand *>{&o.getGateMutable(), &o.getUpMutable()};
      })
      .Case([](CombineGradOp o) {
        return SmallVector<OpOperand *>{&o.getExpertOutputMutable()};
      })
      .Case([](SigmoidScaleGradOp o) {
        return SmallVector<OpOperand *>{&o.getInputMutable()};
      })
      .Default([](Operation *) { return SmallVector<OpOperand *>{}; });
}

/// Makes bf16 copies: one per activation, right after its definition,
/// shared by all its readers; one per weight and reader, right before it,
/// or with copies per step one per weight (known by its global, so that a
/// recomputed layer's second load shares it too) right before its first
/// reader in a block, shared by the block's later readers until a store to
/// the global.
class Narrower {
public:
  Narrower(MLIRContext *context, bool weightCopyPerStep)
      : bf16(BFloat16Type::get(context)), weightCopyPerStep(weightCopyPerStep) {
  }

  Value narrow(Value value, Operation *user) {
    Operation *definition = value.getDefiningOp();
    auto load = dyn_cast_or_null<ml_program::GlobalLoadOp>(definition);
    CopyKey key = copyKey(value, load, user);
    if (Value copy = narrowed.lookup(key))
      return copy;
    OpBuilder builder(value.getContext());
    if (load)
      builder.setInsertionPoint(user);
    else if (definition)
      builder.setInsertionPointAfter(definition);
    else
      builder.setInsertionPointToStart(value.getParentBlock());
    auto type = cast<RankedTensorType>(value.getType()).clone(bf16);
    Operation *copy;
    if (isa_and_nonnull<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(
            definition) &&
        !definition->getOperand(0).getDefiningOp<ml_program::GlobalLoadOp>()) {
      // A reshaped activation's copy is the reshape of its source's copy: a
      // value and its reshapes (attention's output, read by its gradient,
      // and its merged heads, read by the output projection) share one
      // bf16 copy. (A weight's copies are made before their readers.)
      IRMapping sourceCopy;
      sourceCopy.map(definition->getOperand(0),
                     narrow(definition->getOperand(0), user));
      copy = builder.clone(*definition, sourceCopy);
      copy->getResult(0).setType(type);
      copiedReshapes.push_back(definition);
    } else {
      copy = arith::TruncFOp::create(builder, value.getLoc(), type, value);
    }
    if (Operation *source = load ? user : definition)
      copyOrigin(source, copy);
    narrowed[key] = copy->getResult(0);
    return copy->getResult(0);
  }

  Type getBf16() const { return bf16; }

  /// Erases the reshapes copied above that nothing reads any more (the
  /// GEMMs read their copies), so that the reshaped value's copy is its
  /// only reader and moe-narrow-results can fold it. Last first: a chain
  /// of reshapes goes entirely (an outer reshape is copied after its
  /// source).
  void eraseUnreadReshapes() {
    for (Operation *reshape : llvm::reverse(copiedReshapes))
      if (reshape->use_empty())
        reshape->erase();
  }

  /// A store to `global`: later readers of it need a copy of the new value.
  void noteStore(Attribute global) { ++stores[global]; }

private:
  /// What tells the copies apart: the value for an activation; for a
  /// weight, its reader, or its global, the reader's block and the stores
  /// to the global before the reader.
  using CopyKey = std::tuple<const void *, const void *, unsigned>;
  CopyKey copyKey(Value value, ml_program::GlobalLoadOp load,
                  Operation *user) const {
    if (!load)
      return {value.getAsOpaquePointer(), nullptr, 0};
    if (weightCopyPerStep)
      return {load.getGlobalAttr().getAsOpaquePointer(), user->getBlock(),
              stores.lookup(load.getGlobalAttr())};
    return {value.getAsOpaquePointer(), user, 0};
  }

  Type bf16;
  bool weightCopyPerStep;
  DenseMap<CopyKey, Value> narrowed;
  DenseMap<Attribute, unsigned> stores;
  SmallVector<Operation *> copiedReshapes;
};

struct MixedPrecisionPass : moe::impl::MixedPrecisionBase<MixedPrecisionPass> {
  using MixedPrecisionBase::MixedPrecisionBase;

  void runOnOperation() override {
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    if (dtype != "bf16") {
      getOperation().emitError()
          << "moe-mixed-precision: dtype must be bf16, got '" << dtype << "'";
      return signalPassFailure();
    }
    if (weightCopies != "per-gemm" && weightCopies != "per-step" &&
        weightCopies != "per-expert") {
      getOperation().emitError()
          << "moe-mixed-precision: weight-copies must be per-gemm, per-step "
             "or per-expert, got '"
          << weightCopies << "'";
      return signalPassFailure();
    }
    if (failed(requireSameSettingsAsBefore(*this, getOperation())))
      return signalPassFailure();
    auto result = getOperation().walk([&](func::FuncOp function) {
      Narrower narrower(&getContext(), weightCopies == "per-step");
      if (narrowGemmOperands(function, narrower).wasInterrupted())
        return WalkResult::interrupt();
      narrower.eraseUnreadReshapes();
      storeActivationsInBf16(function, narrower);
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    recordTrainingSettings(*this, getOperation());
  }

  WalkResult narrowGemmOperands(func::FuncOp function, Narrower &narrower) {
    // An activation gets one bf16 copy, right after its definition, that
    // its forward and backward GEMMs share: the backward keeps it instead
    // of the f32 value. By default a weight gets a copy right before each
    // GEMM: copies kept from the forward to the backward would hold 2 bytes
    // a parameter for the whole step (570 MB for the small config), more
    // than bf16 activations save, for the price of reading the f32 weight
    // again. Where memory is plentiful and traffic dear (a GPU), one copy
    // per step saves that traffic. With per-expert, the expert kernels
    // round their f32 weights themselves, an expert at a time into cache,
    // so that the experts' weights (most of the model) are not copied
    // through memory at all.
    RouterGradients router(function);
    bool expertWeightsInKernels = weightCopies == "per-expert";
    return function.walk([&](Operation *op) {
      if (auto store = dyn_cast<ml_program::GlobalStoreOp>(op))
        narrower.noteStore(store.getGlobalAttr());
      for (unsigned index : gemmOperands(op, router, expertWeightsInKernels)) {
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
        op->setOperand(index, narrower.narrow(operand, op));
      }
      // The expert FFN keeps its projections in its operands' type: bf16.
      if (auto experts = dyn_cast<ExpertFfnOp>(op))
        experts.getProjections().setType(
            cast<RankedTensorType>(experts.getProjections().getType())
                .clone(narrower.getBf16()));
      return WalkResult::advance();
    });
  }

  /// Stores the other activations the backward keeps in bf16 too: values
  /// defined in the forward (before the first backward op) that only
  /// forward ops and the gradient ops of storedActivations read. If a
  /// backward op still read the f32 value (a recomputed layer reads its
  /// input again), a copy would add memory; a value recomputed in the
  /// backward is not kept across it.
  void storeActivationsInBf16(func::FuncOp function, Narrower &narrower) {
    if (!function.getBody().hasOneBlock())
      return;
    Block &body = function.getBody().front();
    auto backward = llvm::find_if(body, [](Operation &op) {
      return op.hasTrait<moe::OpTrait::Backward>();
    });
    if (backward == body.end())
      return;
    Operation *firstBackward = &*backward;
    auto inForward = [&](Operation *op) {
      return op->getBlock() == &body && op->isBeforeInBlock(firstBackward);
    };
    llvm::MapVector<Value, SmallVector<OpOperand *>> readers;
    for (Operation &op : body)
      for (OpOperand *operand : storedActivations(&op)) {
        Value value = operand->get();
        Operation *definition = value.getDefiningOp();
        // Weights stay f32.
        if (getElementTypeOrSelf(value.getType()).isF32() &&
            (!definition || inForward(definition)) &&
            !isa_and_nonnull<ml_program::GlobalLoadOp>(definition))
          readers[value].push_back(operand);
      }
    // Not a structured binding: C++17 lambdas cannot capture one.
    for (auto &entry : readers) {
      Value value = entry.first;
      ArrayRef<OpOperand *> operands = entry.second;
      if (!llvm::all_of(value.getUses(), [&](OpOperand &use) {
            return llvm::is_contained(operands, &use) ||
                   inForward(use.getOwner());
          }))
        continue;
      Value copy = narrower.narrow(value, nullptr);
      for (OpOperand *operand : operands) {
        OpBuilder builder(operand->getOwner());
        auto widened = arith::ExtFOp::create(builder, value.getLoc(),
                                             value.getType(), copy);
        copyOrigin(operand->getOwner(), widened);
        operand->set(widened);
      }
    }
  }
};

} // namespace
