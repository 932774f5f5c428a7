//===- OpCost.h - what one op of a train step costs -------------*- C++ -*-===//
//
// The cost model's one place of per-op formulas: the arithmetic, memory
// traffic and collective payload of each op, from its static types. The
// estimator (moe-estimate) and the moe-cost-model report add them up over a
// program; nothing there knows a model's formula.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ANALYSIS_OPCOST_H
#define MOE_ANALYSIS_OPCOST_H

#include "mlir/IR/Block.h"
#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"
#include "moert/KernelTypes.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::moe {

/// What one execution of an op costs one rank.
struct OpCost {
  enum class Kind {
    Free,       // views, loads, constants: no kernel
    Gemm,       // dense matrix products (flops = 2 * m * n * k per product)
    Attention,  // the attention matrices of a head (a fused kernel)
    Memory,     // elementwise, normalization, routing, optimizer: bandwidth
    Collective, // a transfer between ranks
  };
  Kind kind = Kind::Free;
  /// Floating-point operations; a multiply-add counts 2.
  double flops = 0;
  /// Bytes of every tensor operand and result, the traffic of a kernel
  /// that reads each once; for a collective, the payload this rank sends
  /// (all_to_all, all_reduce, reduce_scatter) or receives (all_gather).
  double bytes = 0;
  /// Gemm: the shape of one product and how many the op does.
  int64_t m = 0, n = 0, k = 0, products = 0;
  /// Attention: the fraction of the score matrix its kernels compute, a
  /// half where causal and less within a sliding window (its flops still
  /// count the whole matrix, as model flops do).
  double scoreFraction = 1;
  /// Collective: its name (all_to_all, ...) and the ranks in its group.
  StringRef collective;
  int64_t groupSize = 1;
};

/// How full each layer's expert queues ([experts, capacity, *]) and
/// expert-parallel runs ([experts, rows, *]) are under balanced routing:
/// the assignments per expert over the static rows. Expert kernels compute,
/// and the all_to_all sends, only filled rows, and a dropless queue's
/// static capacity is the worst case (every token on one expert), so the
/// cost model prices the balanced fill.
class QueueFill {
public:
  explicit QueueFill(Block &body);
  /// The fraction of `value`'s rows that hold tokens: below 1 for expert
  /// queues and runs and their gradients, 1 for everything else.
  double of(Value value) const;

private:
  llvm::DenseMap<Value, double> fills;
};

/// The cost of `op`; an op the model does not know is an error at its
/// location, so that a new op cannot be silently free.
FailureOr<OpCost> getOpCost(Operation *op, const QueueFill &fill);

/// Whether `cost` counts as model FLOPs: matrix products and attention,
/// the work utilization figures (MFU) divide by time.
inline bool isModelFlops(const OpCost &cost) {
  return cost.kind == OpCost::Kind::Gemm ||
         cost.kind == OpCost::Kind::Attention;
}

/// The fraction of a seq x seq score matrix whose scores `mask` lets the
/// queries see, in the continuum limit: all, a causal half, or within a
/// window of W the band of W * seq - W^2 / 2.
double attentionScoreFraction(moert::AttentionMask mask, int64_t seq);

/// Bytes of a statically shaped tensor (0 for other types).
double tensorBytes(Type type);

} // namespace mlir::moe

#endif // MOE_ANALYSIS_OPCOST_H
