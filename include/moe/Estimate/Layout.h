//===- Layout.h - how a training run is spread over GPUs --------*- C++ -*-===//
//
// Megatron's vocabulary: data parallel (dp) replicas, tensor parallel (tp)
// attention with the sequence split over the same ranks, expert parallel
// (ep) groups carved from the tp x dp ranks of a pipeline stage (ep = tp is
// Skywork's expert-data parallelism, ep | dp Megatron-Core's), pipeline
// stages (pp) with a layer split, micro-batches of `microBatch` sequences,
// ZeRO-1 (optimizer state sharded over data-parallel ranks) and full
// activation recomputation.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ESTIMATE_LAYOUT_H
#define MOE_ESTIMATE_LAYOUT_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir::moe {

struct Layout {
  int64_t dp = 1, tp = 1, ep = 1, pp = 1, microBatch = 1;
  /// Layers per pipeline stage; empty: as even as possible, extra layers
  /// on the middle stages.
  std::vector<int64_t> split;
  bool zero1 = false, recompute = false;

  int64_t gpus() const { return dp * tp * pp; }
};

/// Parses "dp=32,tp=4,ep=4,pp=12,mbs=1,split=4+5+...+4,zero1,recompute".
llvm::Expected<Layout> parseLayout(llvm::StringRef text);

/// The text parseLayout reads.
std::string formatLayout(const Layout &layout);

/// The moe-compile options that build `layout` for a global batch of
/// `globalBatch` sequences: its data-parallel ranks are --expert-parallel's
/// (its world), its ep --expert-ranks (Megatron-LM's expert-model-parallel
/// size), mbs times the ranks a micro-batch (--batch-size), zero1
/// --distributed-optimizer; "" for tensor or pipeline parallelism, which
/// moe-compile does not build.
std::string compileOptionsOf(const Layout &layout, int64_t globalBatch);

/// `layers` spread over `stages` as evenly as possible, extra layers on the
/// middle stages (the first and last also hold the embedding and the head).
std::vector<int64_t> evenSplit(int64_t layers, int64_t stages);

/// The extra layers of an uneven split on the first (or last) stages:
/// what a pipeline gets without a split of its own.
std::vector<int64_t> heavySplit(int64_t layers, int64_t stages, bool first);

} // namespace mlir::moe

#endif // MOE_ESTIMATE_LAYOUT_H
