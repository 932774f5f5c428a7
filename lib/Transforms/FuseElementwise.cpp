//===- FuseElementwise.cpp - chains of elementwise ops as one loop --------===//
//
// A residual add feeding another add, or a SwiGLU feeding a multiply, costs a
// full pass over memory per op when each is its own kernel. Fusing the chain
// into one moe.fused_elementwise keeps every intermediate in a register.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/TypeUtilities.h"

#include <functional>

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

bool isElementwise(Operation *op) { return isa<AddOp, MulOp, SwigluOp>(op); }

/// Whether `op` folds into the single elementwise op that consumes it.
bool isAbsorbed(Operation *op) {
  if (!isElementwise(op) || !op->getResult(0).hasOneUse())
    return false;
  Operation *user = *op->getResult(0).user_begin();
  return isElementwise(user) && user->getBlock() == op->getBlock() &&
         user->getResult(0).getType() == op->getResult(0).getType();
}

/// The scalar computation of one elementwise op in a fused body.
Value buildScalar(OpBuilder &b, Location loc, Operation *op,
                  ArrayRef<Value> operands) {
  if (isa<AddOp>(op))
    return arith::AddFOp::create(b, loc, operands[0], operands[1]);
  if (isa<MulOp>(op))
    return arith::MulFOp::create(b, loc, operands[0], operands[1]);
  // swiglu(g, u) = g / (1 + exp(-g)) * u
  Value gate = operands[0];
  Value one = arith::ConstantOp::create(
      b, loc, b.getFloatAttr(gate.getType(), 1.0));
  Value denominator = arith::AddFOp::create(
      b, loc, one,
      math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, gate)));
  return arith::MulFOp::create(
      b, loc, arith::DivFOp::create(b, loc, gate, denominator), operands[1]);
}

/// Replaces the chain ending at `root` by one fused op.
void fuseChain(Operation *root) {
  // The chain's ops in program order and its inputs in first-use order.
  SmallVector<Operation *> chain;
  SmallVector<Value> inputs;
  std::function<void(Operation *)> collect = [&](Operation *op) {
    for (Value operand : op->getOperands()) {
      Operation *producer = operand.getDefiningOp();
      if (producer && isAbsorbed(producer))
        collect(producer);
      else if (!llvm::is_contained(inputs, operand))
        inputs.push_back(operand);
    }
    chain.push_back(op);
  };
  collect(root);
  if (chain.size() < 2)
    return;

  OpBuilder b(root);
  Location loc = root->getLoc();
  Type type = root->getResult(0).getType();
  auto fused = FusedElementwiseOp::create(b, loc, type, inputs);
  Type element = getElementTypeOrSelf(type);
  Block *body = b.createBlock(&fused.getBody(), {},
                              SmallVector<Type>(inputs.size(), element),
                              SmallVector<Location>(inputs.size(), loc));
  IRMapping scalars;
  for (auto [input, argument] : llvm::zip(inputs, body->getArguments()))
    scalars.map(input, argument);
  for (Operation *op : chain) {
    SmallVector<Value> operands;
    for (Value operand : op->getOperands())
      operands.push_back(scalars.lookup(operand));
    scalars.map(op->getResult(0), buildScalar(b, op->getLoc(), op, operands));
  }
  YieldOp::create(b, loc, scalars.lookup(root->getResult(0)));
  root->getResult(0).replaceAllUsesWith(fused.getResult());
  for (Operation *op : llvm::reverse(chain))
    op->erase();
}

struct FuseElementwisePass
    : moe::impl::FuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    SmallVector<Operation *> roots;
    getOperation().walk([&](Operation *op) {
      if (isElementwise(op) && !isAbsorbed(op))
        roots.push_back(op);
    });
    for (Operation *root : roots)
      fuseChain(root);
  }
};

} // namespace
