//===- LayoutSearch.cpp - enumerate and rank layouts ----------------------===//

#include "moe/Estimate/LayoutSearch.h"

#include <algorithm>
#include <cmath>
#include <set>

using namespace mlir::moe;

namespace {

/// The even split and the splits that move layers off (or onto) the first
/// and last stages, the rest spread evenly over the middle ones.
std::vector<std::vector<int64_t>> candidateSplits(int64_t layers,
                                                  int64_t stages) {
  std::set<std::vector<int64_t>> splits = {
      evenSplit(layers, stages), heavySplit(layers, stages, /*first=*/true),
      heavySplit(layers, stages, /*first=*/false)};
  if (stages == 2)
    for (int64_t first = 1; first < layers; ++first)
      splits.insert({first, layers - first});
  if (stages >= 3) {
    int64_t even = layers / stages;
    for (int64_t first = std::max<int64_t>(1, even - 3); first <= even + 1;
         ++first)
      for (int64_t last = std::max<int64_t>(1, even - 3); last <= even + 1;
           ++last) {
        int64_t middle = layers - first - last;
        if (middle < stages - 2)
          continue;
        std::vector<int64_t> split = {first};
        for (int64_t count : evenSplit(middle, stages - 2))
          split.push_back(count);
        split.push_back(last);
        splits.insert(split);
      }
  }
  return {splits.begin(), splits.end()};
}

} // namespace

std::vector<int64_t> mlir::moe::expertParallelDegrees(const ModelShape &shape,
                                                      const Cluster &cluster) {
  std::vector<int64_t> degrees = {1};
  for (int64_t ep = 2; ep <= shape.experts && ep <= cluster.gpus; ++ep)
    if (shape.experts % ep == 0 && cluster.gpus % ep == 0)
      degrees.push_back(ep);
  return degrees;
}

SearchResult
mlir::moe::searchLayouts(const std::map<int64_t, ModelProfile> &profiles,
                         const Cluster &cluster, int64_t globalBatch,
                         const Layout *degrees) {
  SearchResult result;
  if (profiles.empty())
    return result;
  const ModelShape &shape = profiles.begin()->second.shape;
  for (int64_t tp = 1; tp <= cluster.gpusPerNode; ++tp) {
    if (shape.heads % tp || shape.kvHeads % tp)
      continue;
    for (int64_t pp = 1; pp <= shape.layers; ++pp) {
      if (cluster.gpus % (tp * pp))
        continue;
      int64_t dp = cluster.gpus / (tp * pp);
      std::vector<std::vector<int64_t>> splits =
          candidateSplits(shape.layers, pp);
      for (const auto &[ep, profile] : profiles) {
        if ((tp * dp) % ep || (ep % tp && tp % ep))
          continue;
        if (degrees && (degrees->dp != dp || degrees->tp != tp ||
                        degrees->ep != ep || degrees->pp != pp))
          continue;
        for (int64_t microBatch = 1; microBatch <= 8; microBatch *= 2) {
          if (globalBatch % (dp * microBatch))
            continue;
          for (bool recompute : {false, true})
            for (const std::vector<int64_t> &split : splits) {
              Layout layout;
              layout.dp = dp;
              layout.tp = tp;
              layout.ep = ep;
              layout.pp = pp;
              layout.microBatch = microBatch;
              layout.split = split;
              layout.zero1 = true;
              layout.recompute = recompute;
              Estimate estimated =
                  estimate(profile, cluster, layout, globalBatch);
              (estimated.fits() ? result.ranked : result.rejected)
                  .push_back(std::move(estimated));
            }
        }
      }
    }
  }
  // Faster first; within 0.1%, the one with more memory to spare.
  auto faster = [](const Estimate &a, const Estimate &b) {
    auto bucket = [](const Estimate &e) {
      return std::floor(std::log(e.tokensPerGpuPerSecond) / std::log1p(1e-3));
    };
    if (bucket(a) != bucket(b))
      return bucket(a) > bucket(b);
    return a.totalBytes < b.totalBytes;
  };
  std::stable_sort(result.ranked.begin(), result.ranked.end(), faster);
  std::stable_sort(result.rejected.begin(), result.rejected.end(), faster);
  return result;
}
