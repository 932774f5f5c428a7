//===- GlobalPlacement.cpp - a rank's part of a whole tensor --------------===//

#include "moert/GlobalPlacement.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"
#include "moert/ModelState.h"

#include <algorithm>
#include <cstring>

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
    // Equal parts of the parameter padded to a multiple of them: the
    // last parts may end in (or be) padding.
    int64_t elementBytes = moert::elementBytes(global.tensor.dtype);
    int64_t elements = shaped->bytes / elementBytes;
    if (global.tensor.dtype != shaped->tensor.dtype ||
        global.bytes != (elements + part.size - 1) / part.size * elementBytes)
      fail("global '{}' is not one of {} equal parts of '{}' (padded with "
           "zeros to a multiple of {})",
           global.tensor.name, part.size, shaped->tensor.name, part.size);
    placement.offsetBytes = part.index * global.bytes;
    placement.runBytes = std::clamp<int64_t>(
        shaped->bytes - placement.offsetBytes, 0, global.bytes);
    placement.partsBytes = part.size * global.bytes;
    placement.partAxes = global.part_axes;
  } else {
    placement.runBytes = global.bytes;
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

void moert::copyRunOf(const moe_model &model, const moe_global &global,
                      const RankGroup &group, const void *whole, void *data) {
  GlobalPlacement placement = placementOf(model, global, group);
  std::memcpy(data, static_cast<const char *>(whole) + placement.offsetBytes,
              placement.runBytes);
  std::memset(static_cast<char *>(data) + placement.runBytes, 0,
              global.bytes - placement.runBytes);
}
