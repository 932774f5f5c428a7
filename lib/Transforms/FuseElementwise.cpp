//===- FuseElementwise.cpp - chains of elementwise ops as one loop --------===//
//
// A residual add feeding another add, or a SwiGLU feeding a multiply, costs a
// full pass over memory per op when each is its own kernel. Fusing the chain
// into one moe.fused_elementwise keeps every intermediate in a register.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"
#include "moe/Transforms/Patterns.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Debug.h"

#include <functional>

#define DEBUG_TYPE "moe-fuse-elementwise"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The producer of `operand` that a fused loop of `consumer` computes
/// inline, or null.
Operation *fusedProducer(Value operand, Operation *consumer,
                         const ControlFusionFn &control) {
  Operation *producer = operand.getDefiningOp();
  if (!producer || !canFuseElementwise(producer, consumer))
    return nullptr;
  if (control && !control(producer, consumer)) {
    LLVM_DEBUG(llvm::dbgs() << "not fusing " << *producer
                            << ": declined by the control function\n");
    return nullptr;
  }
  return producer;
}

/// The scalar computation of one elementwise op in a fused body: a case for
/// every op isFusableElementwise takes.
Value buildScalar(OpBuilder &b, Location loc, Operation *op,
                  ArrayRef<Value> operands) {
  return TypeSwitch<Operation *, Value>(op)
      .Case([&](AddOp) {
        return arith::AddFOp::create(b, loc, operands[0], operands[1]);
      })
      .Case([&](MulOp) {
        return arith::MulFOp::create(b, loc, operands[0], operands[1]);
      })
      .Case([&](ScaleOp scale) {
        Value factor = arith::ConstantOp::create(
            b, loc,
            b.getFloatAttr(operands[0].getType(),
                           scale.getFactor().convertToDouble()));
        return arith::MulFOp::create(b, loc, operands[0], factor);
      })
      .Case([&](SwigluOp) {
        // swiglu(g, u) = g / (1 + exp(-g)) * u
        Value gate = operands[0];
        Value one = arith::ConstantOp::create(
            b, loc, b.getFloatAttr(gate.getType(), 1.0));
        Value denominator = arith::AddFOp::create(
            b, loc, one,
            math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, gate)));
        return arith::MulFOp::create(
            b, loc, arith::DivFOp::create(b, loc, gate, denominator),
            operands[1]);
      })
      .Default([](Operation *) -> Value {
        llvm_unreachable("isFusableElementwise takes an op without a scalar "
                         "form here");
      });
}

/// Rewrites the chain of elementwise ops ending at its root, the op whose
/// result no consumer fuses, into one moe.fused_elementwise.
struct FuseElementwiseChain : RewritePattern {
  FuseElementwiseChain(MLIRContext *context, ControlFusionFn control)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, context),
        control(std::move(control)) {}

  LogicalResult matchAndRewrite(Operation *root,
                                PatternRewriter &rewriter) const override {
    if (!isFusableElementwise(root))
      return failure();
    if (root->getResult(0).hasOneUse()) {
      Operation *user = *root->getResult(0).user_begin();
      if (fusedProducer(root->getResult(0), user, control) == root)
        return rewriter.notifyMatchFailure(root, "fused into its user");
    }
    // The chain's ops in program order and its inputs in first-use order.
    SmallVector<Operation *> chain;
    SmallVector<Value> inputs;
    std::function<void(Operation *)> collect = [&](Operation *op) {
      for (Value operand : op->getOperands()) {
        if (Operation *producer = fusedProducer(operand, op, control))
          collect(producer);
        else if (!llvm::is_contained(inputs, operand))
          inputs.push_back(operand);
      }
      chain.push_back(op);
    };
    collect(root);
    if (chain.size() < 2)
      return rewriter.notifyMatchFailure(root, "nothing to fuse");
    LLVM_DEBUG(llvm::dbgs() << "fusing " << chain.size() << " ops ending at "
                            << *root << "\n");

    rewriter.setInsertionPoint(root);
    Location loc = root->getLoc();
    Type type = root->getResult(0).getType();
    auto fused = FusedElementwiseOp::create(rewriter, loc, type, inputs);
    copyOrigin(root, fused);
    Type element = getElementTypeOrSelf(type);
    Block *body = rewriter.createBlock(
        &fused.getBody(), {}, SmallVector<Type>(inputs.size(), element),
        SmallVector<Location>(inputs.size(), loc));
    IRMapping scalars;
    for (auto [input, argument] : llvm::zip(inputs, body->getArguments()))
      scalars.map(input, argument);
    for (Operation *op : chain) {
      SmallVector<Value> operands;
      for (Value operand : op->getOperands())
        operands.push_back(scalars.lookup(operand));
      scalars.map(op->getResult(0),
                  buildScalar(rewriter, op->getLoc(), op, operands));
    }
    YieldOp::create(rewriter, loc, scalars.lookup(root->getResult(0)));
    rewriter.replaceOp(root, fused.getResult());
    for (Operation *op : llvm::reverse(llvm::drop_end(chain)))
      rewriter.eraseOp(op);
    return success();
  }

  ControlFusionFn control;
};

struct FuseElementwisePass
    : moe::impl::FuseElementwiseBase<FuseElementwisePass> {
  using FuseElementwiseBase::FuseElementwiseBase;

  void runOnOperation() override {
    // A plan's offsets and lifetimes are of the values as planned.
    if (failed(requireBeforeCodegen(getOperation(), getArgument())))
      return signalPassFailure();
    ControlFusionFn control;
    if (!fuseSwiglu)
      control = [](Operation *producer, Operation *) {
        return !isa<SwigluOp>(producer);
      };
    RewritePatternSet patterns(&getContext());
    populateFuseElementwisePatterns(patterns, std::move(control));
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace

bool moe::isFusableElementwise(Operation *op) {
  return isa<AddOp, MulOp, ScaleOp, SwigluOp>(op);
}

bool moe::canFuseElementwise(Operation *producer, Operation *consumer) {
  return isFusableElementwise(producer) && isFusableElementwise(consumer) &&
         producer->getResult(0).hasOneUse() &&
         *producer->getResult(0).user_begin() == consumer &&
         consumer->getBlock() == producer->getBlock() &&
         consumer->getResult(0).getType() == producer->getResult(0).getType();
}

void moe::populateFuseElementwisePatterns(RewritePatternSet &patterns,
                                          ControlFusionFn control) {
  patterns.add<FuseElementwiseChain>(patterns.getContext(), std::move(control));
}

// Unity builds compile the next file of the batch after this one.
#undef DEBUG_TYPE
