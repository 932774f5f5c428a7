//===- GridGroups.h - the process groups of a grid's axes -------*- C++ -*-===//
//
// A collective over some axes of an N-D grid of ranks (the shard dialect's
// `grid_axes`) runs in each group of ranks that differ only along those
// axes. The interpreter's ranks and the MPI and NCCL runtimes split their
// ranks the same way, from this one rule.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_GRIDGROUPS_H
#define MOERT_GRIDGROUPS_H

#include "moert/KernelTypes.h"

#include <cstdint>
#include <vector>

namespace moert {

/// The grid of a model of `ranks` ranks of which `expertRanks` share the
/// experts: [ranks], or [ranks / expertRanks, expertRanks] (moe-expert-
/// parallel's layout). Throws moert::Error unless expertRanks divides ranks.
std::vector<int64_t> modelGridShape(int64_t ranks, int64_t expertRanks);

/// The axes of bit mask `mask` (bit i: axis i), in increasing order.
std::vector<int64_t> axesOfMask(int32_t mask);

/// Where a rank stands in the group of a collective over `axes`.
struct GridGroup {
  /// Which group: the same for every rank of it, different between groups
  /// (the linear index of the rank's coordinates along the other axes).
  int64_t color = 0;
  /// The rank's place in its group: the linear index of its coordinates
  /// along `axes`, in the order `axes` lists them (row-major).
  int64_t index = 0;
  /// Ranks per group.
  int64_t size = 1;
};

/// The group of `rank` (row-major over `shape`) for a collective over
/// `axes` of the grid `shape`. Throws moert::Error when an axis is out of
/// range or repeated, or the rank outside the grid.
GridGroup gridGroup(const std::vector<int64_t> &shape,
                    const std::vector<int64_t> &axes, int64_t rank);

/// The ranks of `rank`'s group, in group order.
std::vector<int64_t> gridGroupMembers(const std::vector<int64_t> &shape,
                                      const std::vector<int64_t> &axes,
                                      int64_t rank);

/// Throws the error of a collective over axes (`mask`) the grid lacks.
[[noreturn]] void failNoGridAxes(int32_t mask);

/// A process's communicators of one runtime (an MPI_Comm, an ncclComm_t),
/// one per set of grid axes, made when it joins its group.
template <typename Comm> struct GridCommunicators {
  struct Group {
    Comm comm{};
    int rank = 0;
    int size = 1;
  };
  /// Index: the mask of the axes (entry 0, no axes, unused); empty before
  /// the process joins.
  std::vector<Group> byMask;

  /// The group of `axes`; throws moert::Error for axes the grid lacks.
  const Group &of(GridAxes axes) const {
    if (axes.mask <= 0 || axes.mask >= static_cast<int32_t>(byMask.size()))
      failNoGridAxes(axes.mask);
    return byMask[axes.mask];
  }
};

} // namespace moert

#endif // MOERT_GRIDGROUPS_H
