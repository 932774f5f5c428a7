//===- Collectives.cpp - collectives of expert-parallel programs (MPI) ----===//

#include "moert/Collectives.h"
#include "moert/Error.h"

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

template <typename T> void gather(const T *local, int64_t count, T *whole) {
  if (count > INT32_MAX)
    moert::fail("a collective of {} values exceeds MPI's count limit", count);
  MPI_Allgather(local, static_cast<int>(count), mpiType(local), whole,
                static_cast<int>(count), mpiType(local), MPI_COMM_WORLD);
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

template <typename T> void reduce(const T *local, int64_t count, T *sum) {
  std::vector<T> blocks(count * moert::cpu::groupSize());
  gather(local, count, blocks.data());
  sumBlocks(blocks, moert::cpu::groupSize(), count, sum);
}

template <typename T>
void slice(const T *whole, int64_t outer, int64_t count, T *part) {
  int64_t size = moert::cpu::groupSize(), rank = moert::cpu::groupRank();
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(part + o * count, whole + (o * size + rank) * count,
                count * sizeof(T));
}

} // namespace

int32_t moert::cpu::joinGroup(int32_t ranks) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    MPI_Init(nullptr, nullptr);
  int size = groupSize();
  if (size != ranks)
    fail("the model was compiled for {} ranks, but this job has {} process{}: "
         "run it with mpirun -np {}",
         ranks, size, size == 1 ? "" : "es", ranks);
  return groupRank();
}

void moert::cpu::leaveGroup() {
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

void moert::cpu::allGather(const float *local, int64_t count, float *whole) {
  CollectiveTimer timer;
  gather(local, count, whole);
}
void moert::cpu::allGather(const int32_t *local, int64_t count,
                           int32_t *whole) {
  CollectiveTimer timer;
  gather(local, count, whole);
}
void moert::cpu::allGather(const int64_t *local, int64_t count,
                           int64_t *whole) {
  CollectiveTimer timer;
  gather(local, count, whole);
}

void moert::cpu::allGatherBytes(const void *local, int64_t bytes, void *whole) {
  CollectiveTimer timer;
  if (bytes > INT32_MAX)
    fail("a gather of {} bytes exceeds MPI's count limit", bytes);
  MPI_Allgather(local, static_cast<int>(bytes), MPI_BYTE, whole,
                static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD);
}

void moert::cpu::allReduceSum(const float *local, int64_t count, float *sum) {
  CollectiveTimer timer;
  reduce(local, count, sum);
}
void moert::cpu::allReduceSum(const int64_t *local, int64_t count,
                              int64_t *sum) {
  CollectiveTimer timer;
  reduce(local, count, sum);
}

void moert::cpu::reduceScatterSum(const float *local, int64_t count,
                                  float *part) {
  CollectiveTimer timer;
  // Block q of every rank goes to rank q, which adds them in rank order.
  int64_t size = groupSize();
  std::vector<float> blocks(count * size);
  if (count > INT32_MAX)
    fail("a collective of {} values exceeds MPI's count limit", count);
  MPI_Alltoall(local, static_cast<int>(count), MPI_FLOAT, blocks.data(),
               static_cast<int>(count), MPI_FLOAT, MPI_COMM_WORLD);
  sumBlocks(blocks, size, count, part);
}

void moert::cpu::allToAll(const float *local, int64_t count,
                          int64_t segmentRows, int64_t rowLength,
                          float *received) {
  CollectiveTimer timer;
  int64_t size = groupSize();
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
               MPI_COMM_WORLD);
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
                receiveOffsets.data(), MPI_FLOAT, MPI_COMM_WORLD);
  const float *unpacked = receiveBuffer.data();
  for (int64_t s = 0; s < size * segments; ++s) {
    float *segment = received + s * segmentRows * rowLength;
    int64_t values = receivedRows[s] * rowLength;
    std::memcpy(segment, unpacked, values * sizeof(float));
    std::fill(segment + values, segment + segmentRows * rowLength, 0.0f);
    unpacked += values;
  }
}

void moert::cpu::allSlice(const float *whole, int64_t outer, int64_t count,
                          float *part) {
  slice(whole, outer, count, part);
}
void moert::cpu::allSlice(const int32_t *whole, int64_t outer, int64_t count,
                          int32_t *part) {
  slice(whole, outer, count, part);
}
void moert::cpu::allSlice(const int64_t *whole, int64_t outer, int64_t count,
                          int64_t *part) {
  slice(whole, outer, count, part);
}
