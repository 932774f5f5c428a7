//===- LayoutSearch.h - the layouts that fit, fastest first -----*- C++ -*-===//

#ifndef MOE_ESTIMATE_LAYOUTSEARCH_H
#define MOE_ESTIMATE_LAYOUTSEARCH_H

#include "moe/Estimate/Estimator.h"

#include <map>
#include <vector>

namespace mlir::moe {

struct SearchResult {
  /// Layouts that fit, by predicted throughput, fastest first.
  std::vector<Estimate> ranked;
  /// Layouts that do not, fastest first (they would be, if they fit).
  std::vector<Estimate> rejected;
};

/// The expert-parallel degrees worth compiling a program for: divisors of
/// the expert count that divide the cluster's GPUs.
std::vector<int64_t> expertParallelDegrees(const ModelShape &shape,
                                           const Cluster &cluster);

/// Every layout of the cluster's GPUs: tp dividing the heads within a node,
/// pp up to the layer count with even and non-uniform splits (other layer
/// counts on the first and last stages, which also hold the embedding and
/// the head), ep from `profiles`, micro-batches of 1 to 8 sequences,
/// ZeRO-1, with and without recomputation. With `degrees`, only its dp, tp, ep
/// and pp: the search finds the split, micro-batch and recomputation.
SearchResult searchLayouts(const std::map<int64_t, ModelProfile> &profiles,
                           const Cluster &cluster, int64_t globalBatch,
                           const Layout *degrees = nullptr);

} // namespace mlir::moe

#endif // MOE_ESTIMATE_LAYOUTSEARCH_H
