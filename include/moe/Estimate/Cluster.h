//===- Cluster.h - the machines a layout is priced on -----------*- C++ -*-===//
//
// A cluster file (JSON) describes one kind of node and how many GPUs there
// are; the efficiency factors are the cost model's calibration (see
// docs/Estimator.md for where each default comes from).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_ESTIMATE_CLUSTER_H
#define MOE_ESTIMATE_CLUSTER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mlir::moe {

struct Cluster {
  std::string name;
  int64_t gpus = 0, gpusPerNode = 0;
  /// Dense bf16 peak, flop/s.
  double peakFlops = 0;
  /// HBM size and bandwidth (bytes, bytes/s); memory the framework and
  /// allocator keep (bytes).
  double hbmBytes = 0, hbmBandwidth = 0, reservedBytes = 0;
  /// Per GPU and direction (bytes/s) and per message (s): within a node
  /// (NVLink) and between nodes (the node's network share of one GPU).
  double intraNodeBandwidth = 0, intraNodeLatency = 0;
  double interNodeBandwidth = 0, interNodeLatency = 0;
  /// Fractions of peak reached: GEMMs (times d / (d + gemmHalfDim) for each
  /// of m, n, k), attention (of its full-matrix flop count), bandwidth-bound
  /// kernels (of HBM bandwidth), collectives (of link bandwidth).
  double gemmEfficiency = 0, gemmHalfDim = 0, attentionEfficiency = 0;
  double memoryEfficiency = 0, collectiveEfficiency = 0;
};

/// Parses a cluster file; every key is required (except "notes") and an
/// unknown key is an error naming it.
llvm::Expected<Cluster> parseCluster(llvm::StringRef jsonText,
                                     llvm::StringRef fileName);

} // namespace mlir::moe

#endif // MOE_ESTIMATE_CLUSTER_H
