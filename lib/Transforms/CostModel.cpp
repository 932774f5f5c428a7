//===- CostModel.cpp - report a train step's costs ------------------------===//
//
// The cost model's counts as text, so that lit tests can hold them against
// hand-computed values and users can see what moe-estimate starts from.
//
//===----------------------------------------------------------------------===//

#include "moe/Analysis/ProgramCost.h"
#include "moe/Transforms/Passes.h"

#include "llvm/Support/FormatVariadic.h"

#include <map>

namespace mlir::moe {
#define GEN_PASS_DEF_COSTMODEL
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

std::string slotName(const ProgramCost &program, size_t slot) {
  if (slot == 0)
    return "embed";
  if (slot == program.slots.size() - 1)
    return "head";
  return llvm::formatv("layer {0}", slot - 1).str();
}

const char *phaseName(Phase phase) {
  switch (phase) {
  case Phase::Forward:
    return "forward";
  case Phase::Backward:
    return "backward";
  case Phase::Optimizer:
    return "optimizer";
  }
  llvm_unreachable("unknown phase");
}

struct Totals {
  double gemmFlops = 0, attentionFlops = 0, otherFlops = 0, memoryBytes = 0;
  /// (collective, group size) -> count and bytes.
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, double>>
      collectives;
};

struct CostModelPass : moe::impl::CostModelBase<CostModelPass> {
  using CostModelBase::CostModelBase;

  void runOnOperation() override {
    auto function = getOperation().lookupSymbol<func::FuncOp>(functionName);
    if (!function) {
      getOperation().emitError("moe-cost-model: no function @") << functionName;
      return signalPassFailure();
    }
    FailureOr<ProgramCost> program = analyzeTrainStep(function);
    if (failed(program))
      return signalPassFailure();

    std::map<std::pair<size_t, Phase>, Totals> totals;
    for (const OpRecord &record : program->ops) {
      Totals &total = totals[{record.slot, record.phase}];
      const OpCost &cost = record.cost;
      switch (cost.kind) {
      case OpCost::Kind::Gemm:
        total.gemmFlops += cost.flops;
        break;
      case OpCost::Kind::Attention:
        total.attentionFlops += cost.flops;
        break;
      case OpCost::Kind::Memory:
        total.otherFlops += cost.flops;
        total.memoryBytes += cost.bytes;
        break;
      case OpCost::Kind::Collective: {
        std::string name = record.gradientSync
                               ? "gradient " + cost.collective.str()
                               : cost.collective.str();
        auto &entry = total.collectives[{name, cost.groupSize}];
        ++entry.first;
        entry.second += cost.bytes;
        break;
      }
      case OpCost::Kind::Free:
        break;
      }
    }

    llvm::raw_ostream &os = llvm::outs();
    os << llvm::formatv("cost of @{0}: {1} layers, {2} rank(s)\n", functionName,
                        program->numLayers, program->ranks);
    for (size_t slot = 0; slot < program->slots.size(); ++slot) {
      const SlotCost &slotCost = program->slots[slot];
      std::string name = slotName(*program, slot);
      os << llvm::formatv("{0}: params {1:F0} dense, {2:F0} expert; saved "
                          "activations {3:F0} bytes\n",
                          name, slotCost.denseParams, slotCost.expertParams,
                          slotCost.savedActivationBytes);
      for (Phase phase : {Phase::Forward, Phase::Backward, Phase::Optimizer}) {
        auto found = totals.find({slot, phase});
        if (found == totals.end())
          continue;
        const Totals &total = found->second;
        os << llvm::formatv("{0} {1}: gemm {2:F0} flops, attention {3:F0} "
                            "flops, other {4:F0} flops, memory {5:F0} bytes\n",
                            name, phaseName(phase), total.gemmFlops,
                            total.attentionFlops, total.otherFlops,
                            total.memoryBytes);
        for (const auto &[key, entry] : total.collectives)
          os << llvm::formatv("{0} {1}: {2} x{3} over {4} ranks, {5:F0} "
                              "bytes\n",
                              name, phaseName(phase), key.first, entry.first,
                              key.second, entry.second);
      }
    }
  }
};

} // namespace
