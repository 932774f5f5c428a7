//===- GlobalPlacement.h - a rank's part of a whole tensor ------*- C++ -*-===//
//
// Under expert parallelism and the distributed optimizer a rank's state
// holds parts of tensors: the experts it computes, its share of the Adam
// moments. Checkpoints and weights files hold every tensor whole, so that
// any layout resumes them; this says where a rank's part lies in the whole.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_GLOBALPLACEMENT_H
#define MOERT_GLOBALPLACEMENT_H

#include "moert/ModelAbi.h"

#include <cstdint>
#include <vector>

namespace moert {

/// Where this process stands in the ranks of an SPMD model: its state holds
/// its part of every sharded global (moe_global.sharded), of the parts of
/// the `expertRanks` ranks that share the experts, and of every global the
/// distributed optimizer splits (moe_global.part_axes).
struct RankGroup {
  int32_t rank = 0;
  int32_t ranks = 1;
  int32_t expertRanks = 1;
  /// Which part of a sharded global this rank holds.
  int64_t shard() const { return rank % expertRanks; }
  /// moe_target.gather's masks: every rank, and the ranks that share the
  /// experts with this one (the grid's last axis).
  int32_t allAxes() const;
  int32_t expertAxes() const;
};

/// A global's value on this rank as a contiguous run of its whole tensor.
struct GlobalPlacement {
  /// The tensor of this rank of which the global is a flat part: its own
  /// shape, or its parameter's for a part of the distributed optimizer.
  std::vector<int64_t> rankShape;
  int64_t rankBytes = 0;
  std::vector<int64_t> wholeShape;
  /// Where the global's bytes start in the whole tensor's.
  int64_t offsetBytes = 0;
  /// How many of the global's bytes lie in the whole tensor: all but an
  /// optimizer part's padding (zeros after the rank's tensor).
  int64_t runBytes = 0;
  /// The bytes of the optimizer's parts together: the rank's tensor and
  /// the padding that makes it a multiple of the parts.
  int64_t partsBytes = 0;
  /// moe_target.gather's masks that make the whole from the parts: first
  /// the rank's tensor from the optimizer's parts, then the whole from the
  /// experts' parts (0: no such step).
  int32_t partAxes = 0;
  int32_t expertAxes = 0;
};

/// Where `global` of `model` lies on this rank. Throws moert::Error when the
/// model's description of it is inconsistent.
GlobalPlacement placementOf(const moe_model &model, const moe_global &global,
                            const RankGroup &group);

/// Copies this rank's run of `global` from `whole` (the whole tensor's
/// bytes) into `data`, zeroing the padding.
void copyRunOf(const moe_model &model, const moe_global &global,
               const RankGroup &group, const void *whole, void *data);

} // namespace moert

#endif // MOERT_GLOBALPLACEMENT_H
