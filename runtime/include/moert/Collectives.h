//===- Collectives.h - collectives of expert-parallel programs -*- C++ -*-===//
//
// What the C++ target lowers the shard dialect's collectives to: one
// process per rank, MPI_COMM_WORLD as the 1-D grid. Reductions add in rank
// order, in double, after an exchange, so that every rank gets the same bits,
// and the same as the reference interpreter's ranks.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_COLLECTIVES_H
#define MOERT_COLLECTIVES_H

#include <cstdint>

namespace moert::cpu {

/// Joins the group of a model compiled for `ranks` ranks (MPI_Init) and
/// returns this process's rank; throws moert::Error when the job has
/// another number of processes.
int32_t joinGroup(int32_t ranks);
void leaveGroup();
int32_t groupRank();
int32_t groupSize();
/// Seconds spent in the collectives below so far, on this process.
double collectiveSeconds();

/// `whole` = every rank's `count` values of `local`, in rank order.
void allGather(const float *local, int64_t count, float *whole);
void allGather(const int32_t *local, int64_t count, int32_t *whole);
void allGather(const int64_t *local, int64_t count, int64_t *whole);
/// Every rank's `bytes` bytes, in rank order.
void allGatherBytes(const void *local, int64_t bytes, void *whole);
/// `sum` = the element-wise sum of every rank's `local`.
void allReduceSum(const float *local, int64_t count, float *sum);
void allReduceSum(const int64_t *local, int64_t count, int64_t *sum);
/// `part` (`count` values) = this rank's part of the sum of every rank's
/// `local` (`count` values per rank).
void reduceScatterSum(const float *local, int64_t count, float *part);
/// `local` and `received` hold `count` values, one block per rank: block q
/// of `local` goes to rank q, and `received` holds the blocks for this rank
/// in rank order. A block is segments of `segmentRows` rows of `rowLength`
/// values; rows after a segment's last nonzero row are not sent but
/// received as zeros (the runs of tokens that experts exchange end in
/// zeros), so the bytes sent follow the tokens, not the static shapes.
void allToAll(const float *local, int64_t count, int64_t segmentRows,
              int64_t rowLength, float *received);
/// `part` = this rank's part of `whole` (no communication): `whole` is
/// `outer` groups of one `count`-value block per rank, `part` the `outer`
/// blocks of this rank.
void allSlice(const float *whole, int64_t outer, int64_t count, float *part);
void allSlice(const int32_t *whole, int64_t outer, int64_t count,
              int32_t *part);
void allSlice(const int64_t *whole, int64_t outer, int64_t count,
              int64_t *part);

} // namespace moert::cpu

#endif // MOERT_COLLECTIVES_H
