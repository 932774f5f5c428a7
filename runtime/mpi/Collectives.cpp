//===- Collectives.cpp - collectives of expert-parallel programs (MPI) ----===//

#include "moert/Collectives.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"

// MPI's C API only: OpenMPI's deprecated C++ bindings need a library we do
// not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

double secondsInCollectives = 0;

/// This process's groups, made when it joins, while every rank is there
/// to split the world.
moert::GridCommunicators<MPI_Comm> groups;
using Group = moert::GridCommunicators<MPI_Comm>::Group;

const Group &groupOf(moert::GridAxes axes) { return groups.of(axes); }

void releaseGroups() {
  for (size_t mask = 1; mask < groups.byMask.size(); ++mask)
    MPI_Comm_free(&groups.byMask[mask].comm);
  groups.byMask.clear();
}

/// Adds the lifetime of a collective to secondsInCollectives.
class CollectiveTimer {
public:
  CollectiveTimer() : start(MPI_Wtime()) {}
  ~CollectiveTimer() { secondsInCollectives += MPI_Wtime() - start; }

private:
  double start;
};

MPI_Datatype mpiType(const float *) { return MPI_FLOAT; }
MPI_Datatype mpiType(const int32_t *) { return MPI_INT32_T; }
MPI_Datatype mpiType(const int64_t *) { return MPI_INT64_T; }

template <typename T>
void gather(const Group &group, const T *local, int64_t count, T *whole) {
  if (count > INT32_MAX)
    moert::fail("a collective of {} values exceeds MPI's count limit", count);
  MPI_Allgather(local, static_cast<int>(count), mpiType(local), whole,
                static_cast<int>(count), mpiType(local), group.comm);
}

/// The rank-ordered sum of the `parts` blocks of `count` values in `blocks`.
template <typename T>
void sumBlocks(const std::vector<T> &blocks, int64_t parts, int64_t count,
               T *sum) {
  for (int64_t i = 0; i < count; ++i) {
    double total = 0;
    for (int64_t part = 0; part < parts; ++part)
      total += static_cast<double>(blocks[part * count + i]);
    sum[i] = static_cast<T>(total);
  }
}

template <typename T>
void reduce(const Group &group, const T *local, int64_t count, T *sum) {
  std::vector<T> blocks(count * group.size);
  gather(group, local, count, blocks.data());
  sumBlocks(blocks, group.size, count, sum);
}

template <typename T>
void copyOwnBlock(const Group &group, const T *whole, int64_t outer,
                  int64_t count, T *part) {
  int64_t size = group.size, rank = group.rank;
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(part + o * count, whole + (o * size + rank) * count,
                count * sizeof(T));
}

} // namespace

int32_t moert::cpu::joinGroup(int32_t ranks, int32_t expertRanks) {
  std::vector<int64_t> shape = modelGridShape(ranks, expertRanks);
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    MPI_Init(nullptr, nullptr);
  int size = groupSize();
  int32_t rank = groupRank();
  auto failInGroup = [&](const std::string &message) {
    if (size == 1)
      throw Error(message);
    throw GroupError(message, rank);
  };
  if (size != ranks)
    failInGroup(fmt::format("the model was compiled for {} ranks, but this job "
                            "has {} process{}: run it with mpirun -np {}",
                            ranks, size, size == 1 ? "" : "es", ranks));
  // Each rank splits the world once per set of the grid's axes: a rank of
  // a binary with another grid (the rank count is checked above) would wait
  // in other collectives for ever.
  int64_t mine = expertRanks;
  std::vector<int64_t> expertRanksOf(size);
  MPI_Allgather(&mine, 1, MPI_INT64_T, expertRanksOf.data(), 1, MPI_INT64_T,
                MPI_COMM_WORLD);
  for (int other = 1; other < size; ++other)
    if (expertRanksOf[other] != expertRanksOf[0])
      failInGroup(fmt::format("rank {} runs a model of {} expert ranks, rank "
                              "0 one of {}: every rank runs the same binary",
                              other, expertRanksOf[other], expertRanksOf[0]));
  releaseGroups();
  groups.byMask.assign(size_t(1) << shape.size(), Group());
  for (int32_t mask = 1; mask < static_cast<int32_t>(groups.byMask.size());
       ++mask) {
    GridGroup mine = gridGroup(shape, axesOfMask(mask), rank);
    Group &group = groups.byMask[mask];
    MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(mine.color),
                   static_cast<int>(mine.index), &group.comm);
    group.rank = static_cast<int>(mine.index);
    group.size = static_cast<int>(mine.size);
  }
  return rank;
}

void moert::cpu::leaveGroup() {
  releaseGroups();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

int32_t moert::cpu::groupRank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

double moert::cpu::collectiveSeconds() { return secondsInCollectives; }

int32_t moert::cpu::groupSize() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

void moert::cpu::allGather(GridAxes axes, const float *local, int64_t count,
                           float *whole) {
  CollectiveTimer timer;
  gather(groupOf(axes), local, count, whole);
}
void moert::cpu::allGather(GridAxes axes, const int32_t *local, int64_t count,
                           int32_t *whole) {
  CollectiveTimer timer;
  gather(groupOf(axes), local, count, whole);
}
void moert::cpu::allGather(GridAxes axes, const int64_t *local, int64_t count,
                           int64_t *whole) {
  CollectiveTimer timer;
  gather(groupOf(axes), local, count, whole);
}

void moert::cpu::allGatherBytes(GridAxes axes, const void *local, int64_t bytes,
                                void *whole) {
  CollectiveTimer timer;
  if (bytes > INT32_MAX)
    fail("a gather of {} bytes exceeds MPI's count limit", bytes);
  MPI_Allgather(local, static_cast<int>(bytes), MPI_BYTE, whole,
                static_cast<int>(bytes), MPI_BYTE, groupOf(axes).comm);
}

void moert::cpu::allReduceSum(GridAxes axes, const float *local, int64_t count,
                              float *sum) {
  CollectiveTimer timer;
  reduce(groupOf(axes), local, count, sum);
}
void moert::cpu::allReduceSum(GridAxes axes, const int64_t *local,
                              int64_t count, int64_t *sum) {
  CollectiveTimer timer;
  reduce(groupOf(axes), local, count, sum);
}

void moert::cpu::reduceScatterSum(GridAxes axes, const float *local,
                                  int64_t count, float *part) {
  CollectiveTimer timer;
  // Block q of every rank goes to rank q, which adds them in rank order.
  const Group &group = groupOf(axes);
  int64_t size = group.size;
  std::vector<float> blocks(count * size);
  if (count > INT32_MAX)
    fail("a collective of {} values exceeds MPI's count limit", count);
  MPI_Alltoall(local, static_cast<int>(count), MPI_FLOAT, blocks.data(),
               static_cast<int>(count), MPI_FLOAT, group.comm);
  sumBlocks(blocks, size, count, part);
}

void moert::cpu::allToAll(GridAxes axes, const float *local, int64_t count,
                          int64_t segmentRows, int64_t rowLength,
                          float *received) {
  CollectiveTimer timer;
  const Group &group = groupOf(axes);
  int64_t size = group.size;
  int64_t block = count / size, rowsPerBlock = block / rowLength;
  int64_t segments = rowsPerBlock / segmentRows;
  if (count % size != 0 || block % rowLength != 0 ||
      rowsPerBlock % segmentRows != 0)
    fail("an all-to-all of {} values does not split over {} ranks into "
         "segments of {} rows of {}",
         count, size, segmentRows, rowLength);
  // Each segment's rows after its last nonzero one stay home: the receiver
  // knows they are zero.
  auto isZero = [&](const float *row) {
    for (int64_t i = 0; i < rowLength; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &row[i], sizeof bits);
      if (bits != 0)
        return false;
    }
    return true;
  };
  std::vector<int64_t> sentRows(size * segments), receivedRows(size * segments);
  for (int64_t s = 0; s < size * segments; ++s) {
    const float *segment = local + s * segmentRows * rowLength;
    int64_t rows = segmentRows;
    while (rows > 0 && isZero(segment + (rows - 1) * rowLength))
      --rows;
    sentRows[s] = rows;
  }
  MPI_Alltoall(sentRows.data(), static_cast<int>(segments), MPI_INT64_T,
               receivedRows.data(), static_cast<int>(segments), MPI_INT64_T,
               group.comm);
  // Pack the kept rows per destination, exchange, unpack with zeros.
  auto layout = [&](const std::vector<int64_t> &rows, std::vector<int> &counts,
                    std::vector<int> &offsets) {
    int64_t total = 0;
    for (int64_t q = 0; q < size; ++q) {
      int64_t values = 0;
      for (int64_t s = 0; s < segments; ++s)
        values += rows[q * segments + s] * rowLength;
      if (total + values > INT32_MAX)
        fail("an all-to-all of {} values exceeds MPI's count limit",
             total + values);
      counts[q] = static_cast<int>(values);
      offsets[q] = static_cast<int>(total);
      total += values;
    }
    return total;
  };
  std::vector<int> sendCounts(size), sendOffsets(size), receiveCounts(size),
      receiveOffsets(size);
  thread_local std::vector<float> sendBuffer, receiveBuffer;
  sendBuffer.resize(layout(sentRows, sendCounts, sendOffsets));
  receiveBuffer.resize(layout(receivedRows, receiveCounts, receiveOffsets));
  float *packed = sendBuffer.data();
  for (int64_t s = 0; s < size * segments; ++s) {
    int64_t values = sentRows[s] * rowLength;
    std::memcpy(packed, local + s * segmentRows * rowLength,
                values * sizeof(float));
    packed += values;
  }
  MPI_Alltoallv(sendBuffer.data(), sendCounts.data(), sendOffsets.data(),
                MPI_FLOAT, receiveBuffer.data(), receiveCounts.data(),
                receiveOffsets.data(), MPI_FLOAT, group.comm);
  const float *unpacked = receiveBuffer.data();
  for (int64_t s = 0; s < size * segments; ++s) {
    float *segment = received + s * segmentRows * rowLength;
    int64_t values = receivedRows[s] * rowLength;
    std::memcpy(segment, unpacked, values * sizeof(float));
    std::fill(segment + values, segment + segmentRows * rowLength, 0.0f);
    unpacked += values;
  }
}

void moert::cpu::allSlice(GridAxes axes, const float *whole, int64_t outer,
                          int64_t count, float *part) {
  copyOwnBlock(groupOf(axes), whole, outer, count, part);
}
void moert::cpu::allSlice(GridAxes axes, const int32_t *whole, int64_t outer,
                          int64_t count, int32_t *part) {
  copyOwnBlock(groupOf(axes), whole, outer, count, part);
}
void moert::cpu::allSlice(GridAxes axes, const int64_t *whole, int64_t outer,
                          int64_t count, int64_t *part) {
  copyOwnBlock(groupOf(axes), whole, outer, count, part);
}
