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
// of `axes`: "every rank" and "rank order" below mean theirs.

/// Every rank's `bytes` bytes, in rank order.
void allGatherBytes(GridAxes axes, const void *local, int64_t bytes,
                    void *whole);
/// `whole` = every rank's `count` values of `local`, in rank order.
void allGather(GridAxes axes, const float *local, int64_t count, float *whole);
void allGather(GridAxes axes, const int32_t *local, int64_t count,
               int32_t *whole);
void allGather(GridAxes axes, const int64_t *local, int64_t count,
               int64_t *whole);
/// `sum` = the element-wise sum of every rank's `local`.
void allReduceSum(GridAxes axes, const float *local, int64_t count, float *sum);
void allReduceSum(GridAxes axes, const int64_t *local, int64_t count,
                  int64_t *sum);
/// `part` (`count` values) = this rank's part of the sum of every rank's
/// `local` (`count` values per rank).
void reduceScatterSum(GridAxes axes, const float *local, int64_t count,
                      float *part);
/// `local` and `received` hold `count` values, one block per rank: block q
/// of `local` goes to rank q, and `received` holds the blocks for this rank
/// in rank order. A block is segments of `segmentRows` rows of `rowLength`
/// values; rows after a segment's last nonzero row are not sent but
/// received as zeros (the runs of tokens that experts exchange end in
/// zeros), so the bytes sent follow the tokens, not the static shapes.
void allToAll(GridAxes axes, const float *local, int64_t count,
              int64_t segmentRows, int64_t rowLength, float *received);
/// `part` = this rank's part of `whole` (no communication): `whole` is
/// `outer` groups of one `count`-value block per rank, `part` the `outer`
/// blocks of this rank.
void allSlice(GridAxes axes, const float *whole, int64_t outer, int64_t count,
              float *part);
void allSlice(GridAxes axes, const int32_t *whole, int64_t outer, int64_t count,
              int32_t *part);
void allSlice(GridAxes axes, const int64_t *whole, int64_t outer, int64_t count,
              int64_t *part);

} // namespace moert::cpu

#endif // MOERT_COLLECTIVES_H
