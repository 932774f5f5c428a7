//===- Patterns.h - the moe rewrite patterns --------------------*- C++ -*-===//
//
// The rewrites behind moe-fuse-router, moe-gate-norm and moe-fuse-elementwise,
// as pattern sets that other passes and pipelines can combine. Each fusion
// has a legality check (what must hold for the rewrite to be correct) and
// takes an optional control function (whether to fuse where it is legal),
// as upstream Linalg's elementwise fusion does.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TRANSFORMS_PATTERNS_H
#define MOE_TRANSFORMS_PATTERNS_H

#include "moe/MoeDialect.h"

#include "mlir/IR/PatternMatch.h"

#include <functional>

namespace mlir::moe {

/// Decides whether to fuse `producer` into its consumer `consumer` where the
/// fusion is legal. An empty function fuses wherever it is legal.
using ControlFusionFn =
    std::function<bool(Operation *producer, Operation *consumer)>;

/// Whether `norm` may be folded into `gate` as its norm_lambda/norm_eps:
/// `gate` reads `norm`'s result as its logits and does not normalize them
/// itself (normalizing twice is not one normalization).
bool canFoldGateNormIntoGate(GateNormOp norm, GateOp gate);

/// moe.gate_norm feeding a moe.gate -> one normalizing moe.gate
/// (moe-fuse-router). The moe.gate_norm goes when nothing else reads it.
void populateFuseRouterPatterns(RewritePatternSet &patterns);

/// Gives every moe.gate the gating logit normalization `lambda` (0: none)
/// with `eps`, in the expanded form (moe-gate-norm). A gate already in that
/// form is left alone, so the patterns reach a fixed point.
void populateGateNormPatterns(RewritePatternSet &patterns, double lambda,
                              double eps);

/// Whether `op` is an elementwise op that fused loops compute (moe.add,
/// moe.mul, moe.swiglu).
bool isFusableElementwise(Operation *op);

/// Whether `producer` may be computed inside the loop of `consumer`:
/// both are elementwise of the same result type, in one block, and
/// `consumer` is the only reader of `producer`'s result (otherwise the
/// intermediate would have to be written anyway).
bool canFuseElementwise(Operation *producer, Operation *consumer);

/// Each maximal chain of fusable elementwise ops -> one
/// moe.fused_elementwise (moe-fuse-elementwise).
void populateFuseElementwisePatterns(RewritePatternSet &patterns,
                                     ControlFusionFn control = {});

} // namespace mlir::moe

#endif // MOE_TRANSFORMS_PATTERNS_H
