//===- GlobalPlacement.cpp - a rank's part of a whole tensor --------------===//

#include "moert/GlobalPlacement.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"

int32_t moert::RankGroup::allAxes() const {
  return (int32_t(1) << modelGridShape(ranks, expertRanks).size()) - 1;
}

int32_t moert::RankGroup::expertAxes() const {
  return int32_t(1) << (modelGridShape(ranks, expertRanks).size() - 1);
}

moert::GlobalPlacement moert::placementOf(const moe_model &model,
                                          const moe_global &global,
                                          const RankGroup &group) {
  GlobalPlacement placement;
  const moe_global *shaped = &global;
  if (global.part_axes != 0) {
    if (global.part_of < 0 || global.part_of >= model.num_globals)
      fail("global '{}' is a part of global {}, which the model lacks",
           global.tensor.name, global.part_of);
    shaped = &model.globals[global.part_of];
    GridGroup part;
    try {
      part = gridGroup(modelGridShape(group.ranks, group.expertRanks),
                       axesOfMask(global.part_axes), group.rank);
    } catch (const Error &error) {
      fail("global '{}': {}", global.tensor.name, error.what());
    }
    if (global.bytes * part.size != shaped->bytes)
      fail("global '{}' is not one of {} equal parts of '{}'",
           global.tensor.name, part.size, shaped->tensor.name);
    placement.offsetBytes = part.index * global.bytes;
    placement.partAxes = global.part_axes;
  }
  placement.rankShape.assign(shaped->tensor.shape,
                             shaped->tensor.shape + shaped->tensor.rank);
  placement.rankBytes = shaped->bytes;
  placement.wholeShape = placement.rankShape;
  if (global.sharded && group.expertRanks > 1) {
    placement.wholeShape.at(0) *= group.expertRanks;
    placement.offsetBytes += group.shard() * shaped->bytes;
    placement.expertAxes = group.expertAxes();
  }
  return placement;
}
