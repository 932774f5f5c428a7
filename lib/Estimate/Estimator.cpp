//===- Estimator.cpp - a layout's memory and step time --------------------===//

#include "moe/Estimate/Estimator.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>

using namespace mlir::moe;

namespace {

/// The program is f32; bf16 mixed-precision training keeps activations and
/// sends tokens in half the bytes.
constexpr double kActivationScale = 0.5, kActivationBytes = 2;
/// Mixed-precision state per parameter (Megatron's distributed optimizer):
/// bf16 weights, f32 gradients, f32 master weights and Adam moments (the
/// last three sharded by ZeRO-1).
constexpr double kWeightBytes = 2, kGradBytes = 4, kOptimizerStateBytes = 12;
/// Gradients are reduced in bf16.
constexpr double kGradCommBytes = 2;

double gemmSeconds(const OpCost &cost, const Cluster &cluster) {
  if (cost.flops == 0)
    return 0;
  auto shapeFactor = [&](int64_t dim) {
    return dim / (dim + cluster.gemmHalfDim);
  };
  double efficiency = cluster.gemmEfficiency * shapeFactor(cost.m) *
                      shapeFactor(cost.n) * shapeFactor(cost.k);
  return cost.flops / (cluster.peakFlops * efficiency);
}

double opSeconds(const OpCost &cost, const Cluster &cluster) {
  switch (cost.kind) {
  case OpCost::Kind::Gemm:
    return gemmSeconds(cost, cluster);
  case OpCost::Kind::Attention:
    // A causal kernel skips the scores its queries do not see.
    return cost.flops * cost.scoreFraction /
           (cluster.peakFlops * cluster.attentionEfficiency);
  case OpCost::Kind::Memory:
    return cost.bytes * kActivationScale /
           (cluster.hbmBandwidth * cluster.memoryEfficiency);
  case OpCost::Kind::Collective:
  case OpCost::Kind::Free:
    return 0;
  }
  return 0;
}

/// Ring algorithms: all_reduce moves 2 (n - 1) / n of the payload over
/// 2 (n - 1) steps, the others (n - 1) / n over n - 1.
double collectiveSeconds(llvm::StringRef name, double bytes, int64_t group,
                         bool intraNode, const Cluster &cluster) {
  if (group <= 1 || bytes <= 0)
    return 0;
  double steps = (name == "all_reduce" ? 2.0 : 1.0) * (group - 1);
  double bandwidth =
      (intraNode ? cluster.intraNodeBandwidth : cluster.interNodeBandwidth) *
      cluster.collectiveEfficiency;
  double latency =
      intraNode ? cluster.intraNodeLatency : cluster.interNodeLatency;
  return steps * latency + bytes * steps / group / bandwidth;
}

} // namespace

ModelProfile mlir::moe::profileProgram(const ProgramCost &program,
                                       const ModelShape &shape,
                                       const Cluster &cluster) {
  ModelProfile profile;
  profile.shape = shape;
  profile.ep = program.expertRanks;
  profile.slots.resize(program.slots.size());
  for (size_t slot = 0; slot < program.slots.size(); ++slot)
    profile.slots[slot].cost = program.slots[slot];
  for (const OpRecord &record : program.ops) {
    SlotProfile &slot = profile.slots[record.slot];
    const OpCost &cost = record.cost;
    if (record.phase == Phase::Optimizer) {
      if (record.parameterUpdate)
        slot.optimizerBytes += cost.bytes;
      continue;
    }
    if (cost.kind == OpCost::Kind::Collective) {
      // The layout prices gradient reductions over its own groups.
      if (record.gradientSync)
        continue;
      auto found = llvm::find_if(slot.collectives, [&](const CollectiveUse &c) {
        return c.name == cost.collective && c.phase == record.phase &&
               c.groupSize == cost.groupSize;
      });
      if (found == slot.collectives.end())
        found = slot.collectives.insert(
            found, {cost.collective.str(), record.phase, cost.groupSize, 0, 0});
      found->bytes += cost.bytes;
      ++found->count;
      continue;
    }
    bool forward = record.phase == Phase::Forward;
    (forward ? slot.forwardSeconds : slot.backwardSeconds) +=
        opSeconds(cost, cluster);
    if (isModelFlops(cost))
      (forward ? slot.forwardFlops : slot.backwardFlops) += cost.flops;
  }
  return profile;
}

std::string mlir::moe::expertParallelError(const ModelShape &shape,
                                           int64_t ep) {
  if (shape.experts == 0)
    return ep == 1 ? ""
                   : llvm::formatv("ep={0}: a dense model has no experts "
                                   "to spread",
                                   ep)
                         .str();
  if (shape.experts % ep)
    return llvm::formatv("ep={0} does not divide the {1} experts", ep,
                         shape.experts);
  return "";
}

Estimate mlir::moe::estimate(const ModelProfile &profile,
                             const Cluster &cluster, const Layout &layoutArg,
                             int64_t globalBatch) {
  Estimate result;
  result.layout = layoutArg;
  Layout &layout = result.layout;
  const ModelShape &shape = profile.shape;
  auto reject = [&](const llvm::Twine &why) {
    result.rejection = why.str();
    return result;
  };

  if (layout.gpus() != cluster.gpus)
    return reject(llvm::formatv("dp x tp x pp = {0} GPUs, but the cluster "
                                "has {1}",
                                layout.gpus(), cluster.gpus));
  if (shape.heads % layout.tp || shape.kvHeads % layout.tp)
    return reject(llvm::formatv("tp={0} does not divide the {1} attention "
                                "heads and {2} key/value heads",
                                layout.tp, shape.heads, shape.kvHeads));
  if (layout.tp > cluster.gpusPerNode)
    return reject(llvm::formatv("tp={0} spans more than a node of {1} GPUs",
                                layout.tp, cluster.gpusPerNode));
  if (layout.ep != profile.ep)
    return reject(llvm::formatv("the program was compiled for ep={0}, not {1}",
                                profile.ep, layout.ep));
  if (std::string why = expertParallelError(shape, layout.ep); !why.empty())
    return reject(why);
  if ((layout.tp * layout.dp) % layout.ep ||
      (layout.ep % layout.tp && layout.tp % layout.ep))
    return reject(llvm::formatv("ep={0} is not a group of the tp x dp = {1} "
                                "ranks of a stage (ep must divide tp x dp "
                                "and divide or be a multiple of tp)",
                                layout.ep, layout.tp * layout.dp));
  if (layout.pp > shape.layers)
    return reject(llvm::formatv("pp={0} exceeds the {1} layers", layout.pp,
                                shape.layers));
  if (layout.split.empty())
    layout.split = evenSplit(shape.layers, layout.pp);
  int64_t splitLayers = 0;
  for (int64_t layers : layout.split)
    splitLayers += layers;
  if (static_cast<int64_t>(layout.split.size()) != layout.pp ||
      splitLayers != shape.layers)
    return reject(llvm::formatv("split covers {0} layers in {1} stages; the "
                                "model has {2} layers and pp={3}",
                                splitLayers, layout.split.size(), shape.layers,
                                layout.pp));
  if (globalBatch % (layout.dp * layout.microBatch))
    return reject(llvm::formatv("the global batch of {0} sequences does not "
                                "split into dp={1} x mbs={2}",
                                globalBatch, layout.dp, layout.microBatch));
  int64_t microBatches = globalBatch / (layout.dp * layout.microBatch);
  result.microBatches = microBatches;

  // Per-token work of a micro-batch on one GPU, relative to the profile's
  // one sequence.
  double tokenScale = static_cast<double>(layout.microBatch) / layout.tp;
  double tokens = static_cast<double>(layout.microBatch) * shape.seqLen;
  // Ranks are numbered tp fastest, then dp, then pp.
  auto fitsInNode = [&](int64_t extent) {
    return extent <= cluster.gpusPerNode;
  };
  int64_t epExtent = std::max(layout.ep, layout.tp);
  int64_t expertDataParallel = layout.tp * layout.dp / layout.ep;
  // A micro-batch's hidden states in bf16.
  double hiddenBytes = tokens * shape.hidden * kActivationBytes;

  // Bytes per GPU: each stage's, averaged over the stages.
  auto addBytes = [&](const std::string &name, double bytes) {
    result.collectiveBytes[name] += bytes / layout.pp;
  };
  double pipeline = 0, slowest = 0, syncSeconds = 0, optimizerSeconds = 0;
  size_t firstSlot = 0;
  double fullest = -1;
  for (int64_t stage = 0; stage < layout.pp; ++stage) {
    // The stage's slots: its layers, plus the embedding on the first and
    // the head on the last.
    size_t begin = firstSlot + (stage == 0 ? 0 : 1);
    size_t end =
        firstSlot + 1 + layout.split[stage] + (stage == layout.pp - 1 ? 1 : 0);
    firstSlot += layout.split[stage];
    double seconds = 0, denseParams = 0, expertParams = 0, saved = 0,
           updateBytes = 0, params = 0;
    for (size_t slot = begin; slot < end; ++slot) {
      const SlotProfile &profiled = profile.slots[slot];
      bool isLayer = slot != 0 && slot != profile.slots.size() - 1;
      double compute = profiled.forwardSeconds + profiled.backwardSeconds;
      if (layout.recompute && isLayer)
        compute += profiled.forwardSeconds;
      seconds += compute * tokenScale;
      // A recomputed forward repeats its exchanges.
      bool again = layout.recompute && isLayer;
      for (const CollectiveUse &use : profiled.collectives) {
        double runs = use.phase == Phase::Forward && again ? 2 : 1;
        double bytes = use.bytes * kActivationScale * tokenScale;
        seconds += runs * use.count *
                   collectiveSeconds(use.name, bytes / use.count, use.groupSize,
                                     fitsInNode(epExtent), cluster);
        addBytes(use.name, runs * bytes * microBatches);
      }
      if (isLayer && layout.tp > 1) {
        // Sequence-parallel attention: an all_gather of the layer's input
        // and a reduce_scatter of its output, forward (twice with
        // recomputation) and backward.
        double bytes = hiddenBytes / layout.tp;
        double passes = again ? 3 : 2;
        for (const char *name : {"all_gather", "reduce_scatter"}) {
          seconds +=
              passes * collectiveSeconds(name, bytes * layout.tp, layout.tp,
                                         fitsInNode(layout.tp), cluster);
          addBytes(std::string("tp ") + name, passes * bytes * microBatches);
        }
      }
      denseParams += profiled.cost.denseParams / layout.tp;
      expertParams += profiled.cost.expertParams;
      saved += isLayer && layout.recompute
                   ? hiddenBytes / layout.tp
                   : profiled.cost.savedActivationBytes * kActivationScale *
                         tokenScale;
      updateBytes += profiled.optimizerBytes;
      params += profiled.cost.denseParams + profiled.cost.expertParams;
    }
    if (layout.pp > 1) {
      // Activations forward and their gradients back, within a node when
      // two stages fit in one.
      double bytes = hiddenBytes / layout.tp;
      bool intra = fitsInNode(layout.tp * layout.dp * 2);
      seconds += 2 * collectiveSeconds("send", bytes * 2, 2, intra, cluster);
      addBytes("pp send/recv", 2 * bytes * microBatches);
    }
    result.stageSeconds.push_back(seconds);
    pipeline += seconds;
    slowest = std::max(slowest, seconds);

    // Gradients: dense ones over the data-parallel ranks, expert ones over
    // the ranks holding the same experts; ZeRO-1's reduce_scatter and
    // all_gather move what an all_reduce does.
    double denseGrad = denseParams * kGradCommBytes;
    double expertGrad = expertParams * kGradCommBytes;
    double sync =
        collectiveSeconds("all_reduce", denseGrad, layout.dp,
                          fitsInNode(layout.tp * layout.dp), cluster) +
        collectiveSeconds("all_reduce", expertGrad, expertDataParallel,
                          fitsInNode(layout.tp * layout.dp), cluster);
    syncSeconds = std::max(syncSeconds, sync);
    if (layout.dp > 1)
      addBytes("dp gradient reduction",
               2 * denseGrad * (layout.dp - 1) / layout.dp);
    if (expertDataParallel > 1 && expertGrad > 0)
      addBytes("expert gradient reduction",
               2 * expertGrad * (expertDataParallel - 1) / expertDataParallel);

    double denseShard = layout.zero1 ? layout.dp : 1;
    double expertShard = layout.zero1 ? expertDataParallel : 1;
    double optimizerParams =
        denseParams / denseShard + expertParams / expertShard;
    double bytesPerParam = params > 0 ? updateBytes / params : 0;
    optimizerSeconds =
        std::max(optimizerSeconds,
                 optimizerParams * bytesPerParam /
                     (cluster.hbmBandwidth * cluster.memoryEfficiency));

    // 1F1B: stage s holds the activations of min(m, pp - s) micro-batches.
    double inFlight = std::min<double>(microBatches, layout.pp - stage);
    double paramBytes = (denseParams + expertParams) * kWeightBytes;
    double gradBytes = (denseParams + expertParams) * kGradBytes;
    double optimizerBytes = optimizerParams * kOptimizerStateBytes;
    double activationBytes = saved * inFlight;
    if (layout.recompute) {
      // One layer's activations are rebuilt at a time, from its kept input,
      // which `saved` counts already.
      double layerSaved = 0;
      for (size_t slot = std::max<size_t>(begin, 1);
           slot < std::min(end, profile.slots.size() - 1); ++slot)
        layerSaved =
            std::max(layerSaved, profile.slots[slot].cost.savedActivationBytes);
      activationBytes +=
          std::max(0.0, layerSaved * kActivationScale * tokenScale -
                            hiddenBytes / layout.tp);
    }
    double total = paramBytes + gradBytes + optimizerBytes + activationBytes +
                   cluster.reservedBytes;
    if (total > fullest) {
      fullest = total;
      result.fullestStage = stage;
      result.paramBytes = paramBytes;
      result.gradBytes = gradBytes;
      result.optimizerBytes = optimizerBytes;
      result.activationBytes = activationBytes;
      result.reservedBytes = cluster.reservedBytes;
      result.totalBytes = total;
    }
  }

  // 1F1B: every stage runs each micro-batch once; the slowest one paces
  // the steady state.
  result.pipelineSeconds = pipeline + (microBatches - 1) * slowest;
  result.bubbleFraction =
      1 - microBatches * slowest / std::max(result.pipelineSeconds, 1e-30);
  result.syncSeconds = syncSeconds;
  result.optimizerSeconds = optimizerSeconds;
  result.stepSeconds = result.pipelineSeconds + syncSeconds + optimizerSeconds;

  double flopsPerSequence = 0;
  for (const SlotProfile &slot : profile.slots)
    flopsPerSequence += slot.forwardFlops + slot.backwardFlops;
  result.flops = flopsPerSequence * globalBatch / cluster.gpus;
  result.tokensPerGpuPerSecond = static_cast<double>(globalBatch) *
                                 shape.seqLen / cluster.gpus /
                                 result.stepSeconds;
  result.mfu = result.flops / result.stepSeconds / cluster.peakFlops;
  result.priced = true;
  if (result.totalBytes > cluster.hbmBytes)
    return reject(llvm::formatv("stage {0} needs {1:F1} GB of the {2:F1} GB "
                                "of HBM",
                                result.fullestStage, result.totalBytes / 1e9,
                                cluster.hbmBytes / 1e9));
  return result;
}
