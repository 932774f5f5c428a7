//===- Collectives.h - collectives of expert-parallel programs -*- C++ -*-===//
//
// What the C++ target lowers the shard dialect's collectives to: one
// process per rank of the model's grid (moert/GridGroups.h), MPI_COMM_WORLD
// the whole grid. Each collective runs among the ranks of the grid axes it
// names, in their order. Reductions add in rank order, in double, after an
// exchange, so that every rank gets the same bits, and the same as the
// reference interpreter's ranks.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_COLLECTIVES_H
#define MOERT_COLLECTIVES_H

#include "moert/KernelTypes.h"

#include <cstdint>

namespace moert::cpu {

/// Joins the group of a model compiled for `ranks` ranks of which
/// `expertRanks` share the experts (MPI_Init, and a communicator per set of
/// grid axes) and returns this process's rank; throws moert::Error when the
/// job has another number of processes.
int32_t joinGroup(int32_t ranks, int32_t expertRanks);
void leaveGroup();
/// This process's rank, and the ranks, of the whole grid.
int32_t groupRank();
int32_t groupSize();
/// Seconds spent in the collectives below so far, on this process.
double collectiveSeconds();

// The collectives of compiled models (and of the driver), among the ranks
// of `axes`: "every rank" and "rank order" below mean theirs; those of
// compiled models are declared in TargetCollectives.inc.

/// Every rank's `bytes` bytes, in rank order.
void allGatherBytes(GridAxes axes, const void *local, int64_t bytes,
                    void *whole);

#include "moert/TargetCollectives.inc"

} // namespace moert::cpu

#endif // MOERT_COLLECTIVES_H
