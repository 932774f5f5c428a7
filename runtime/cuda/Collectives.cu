//===- Collectives.cu - the CUDA target's collectives over NCCL -----------===//
//
// The shard dialect's collectives (moert/Collectives.h gives their
// semantics) as NCCL calls on the step's stream, so that they are captured
// in the step's graph with the kernels. MPI only starts the group: it finds
// the ranks and broadcasts the NCCL id.
//
// allToAll sends whole blocks: the runs of tokens that experts exchange end
// in zeros, so what the CPU target trims (rows after a segment's last
// nonzero row) arrives as the zeros it would have been filled with, and the
// counts that trimming needs would be a host read inside the step.
//
//===----------------------------------------------------------------------===//

#include "Collectives.h"
#include "Support.h"

#include "moert/Collectives.h"
#include "moert/CudaKernels.h"
#include "moert/CudaTarget.h"
#include "moert/Error.h"

#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>

using namespace moert::cuda;

namespace {

ncclComm_t communicator = nullptr;
int32_t rank = 0, size = 1;
double secondsInCollectives = 0;

void checkNccl(ncclResult_t status, const char *what) {
  if (status != ncclSuccess)
    moert::fail("NCCL: {} failed: {}", what, ncclGetErrorString(status));
}

/// Adds the host time of a collective's call to secondsInCollectives (the
/// device time is the step's).
class CollectiveTimer {
public:
  CollectiveTimer() : start(std::chrono::steady_clock::now()) {}
  ~CollectiveTimer() {
    secondsInCollectives +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
  }

private:
  std::chrono::steady_clock::time_point start;
};

ncclComm_t comm() {
  if (!communicator)
    moert::fail("a collective ran before the process joined its group");
  return communicator;
}

ncclDataType_t ncclType(const float *) { return ncclFloat32; }
ncclDataType_t ncclType(const int32_t *) { return ncclInt32; }
ncclDataType_t ncclType(const int64_t *) { return ncclInt64; }

template <typename T> void gather(const T *local, int64_t count, T *whole) {
  CollectiveTimer timer;
  checkNccl(
      ncclAllGather(local, whole, count, ncclType(local), comm(), stream()),
      "ncclAllGather");
}

template <typename T> void reduce(const T *local, int64_t count, T *sum) {
  CollectiveTimer timer;
  checkNccl(ncclAllReduce(local, sum, count, ncclType(local), ncclSum, comm(),
                          stream()),
            "ncclAllReduce");
}

template <typename T>
void slice(const T *whole, int64_t outer, int64_t count, T *part) {
  CollectiveTimer timer;
  check(cudaMemcpy2DAsync(part, count * sizeof(T), whole + rank * count,
                          size * count * sizeof(T), count * sizeof(T), outer,
                          cudaMemcpyDeviceToDevice, stream()),
        "cudaMemcpy2DAsync (all_slice)");
}

} // namespace

int32_t moert::cuda::joinGroup(int32_t ranks) {
  rank = moert::cpu::joinGroup(ranks);
  size = ranks;
  // The ranks of one node share its GPUs round-robin.
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                      &node);
  int localRank = 0;
  MPI_Comm_rank(node, &localRank);
  MPI_Comm_free(&node);
  int devices = 0;
  check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  check(cudaSetDevice(localRank % devices), "cudaSetDevice");
  ncclUniqueId id;
  if (rank == 0)
    checkNccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  checkNccl(ncclCommInitRank(&communicator, size, id, rank),
            "ncclCommInitRank");
  return rank;
}

void moert::cuda::gatherBytes(const void *local, int64_t bytes, void *whole) {
  moert::cpu::allGatherBytes(local, bytes, whole);
}

void moert::cuda::leaveGroup() {
  if (communicator) {
    check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    releaseGraphs();
    ncclCommDestroy(communicator);
    communicator = nullptr;
  }
  moert::cpu::leaveGroup();
}

double moert::cuda::collectiveSeconds() { return secondsInCollectives; }

void moert::cuda::allGather(const float *local, int64_t count, float *whole) {
  gather(local, count, whole);
}
void moert::cuda::allGather(const int32_t *local, int64_t count,
                            int32_t *whole) {
  gather(local, count, whole);
}
void moert::cuda::allGather(const int64_t *local, int64_t count,
                            int64_t *whole) {
  gather(local, count, whole);
}

void moert::cuda::allReduceSum(const float *local, int64_t count, float *sum) {
  reduce(local, count, sum);
}
void moert::cuda::allReduceSum(const int64_t *local, int64_t count,
                               int64_t *sum) {
  reduce(local, count, sum);
}

void moert::cuda::reduceScatterSum(const float *local, int64_t count,
                                   float *part) {
  CollectiveTimer timer;
  checkNccl(ncclReduceScatter(local, part, count, ncclFloat32, ncclSum, comm(),
                              stream()),
            "ncclReduceScatter");
}

void moert::cuda::allToAll(const float *local, int64_t count, int64_t,
                           int64_t rowLength, float *received) {
  CollectiveTimer timer;
  int64_t block = count / size;
  if (count % size != 0 || block % rowLength != 0)
    moert::fail("an all-to-all of {} values does not split over {} ranks into "
                "rows of {}",
                count, size, rowLength);
  checkNccl(ncclGroupStart(), "ncclGroupStart");
  for (int32_t peer = 0; peer < size; ++peer) {
    checkNccl(ncclSend(local + peer * block, block, ncclFloat32, peer, comm(),
                       stream()),
              "ncclSend");
    checkNccl(ncclRecv(received + peer * block, block, ncclFloat32, peer,
                       comm(), stream()),
              "ncclRecv");
  }
  checkNccl(ncclGroupEnd(), "ncclGroupEnd");
}

void moert::cuda::allSlice(const float *whole, int64_t outer, int64_t count,
                           float *part) {
  slice(whole, outer, count, part);
}
void moert::cuda::allSlice(const int32_t *whole, int64_t outer, int64_t count,
                           int32_t *part) {
  slice(whole, outer, count, part);
}
void moert::cuda::allSlice(const int64_t *whole, int64_t outer, int64_t count,
                           int64_t *part) {
  slice(whole, outer, count, part);
}
