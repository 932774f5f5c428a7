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
// NCCL sums f32 in f32, in the order of its ring or tree, where the CPU
// target sums in double in rank order: over 2 ranks both round the same
// exact sum once, over more they agree to f32 rounding, not bit for bit.
//
//===----------------------------------------------------------------------===//

#include "Collectives.h"
#include "Support.h"

#include "moert/Collectives.h"
#include "moert/CudaKernels.h"
#include "moert/CudaTarget.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"

#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>

// ncclCommSplit, which gives each set of grid axes its communicator.
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 18, 0)
#error "the CUDA target needs NCCL 2.18 or later (ncclCommSplit)"
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace moert::cuda;

namespace {

/// This process's groups; the last, every axis, is the whole grid.
moert::GridCommunicators<ncclComm_t> groups;
using Group = moert::GridCommunicators<ncclComm_t>::Group;
int32_t rank = 0;

void checkNccl(ncclResult_t status, const char *what) {
  if (status != ncclSuccess)
    moert::fail("NCCL: {} failed: {}", what, ncclGetErrorString(status));
}

const Group &groupOf(moert::GridAxes axes) { return groups.of(axes); }

ncclDataType_t ncclType(const float *) { return ncclFloat32; }
ncclDataType_t ncclType(const int32_t *) { return ncclInt32; }
ncclDataType_t ncclType(const int64_t *) { return ncclInt64; }

template <typename T>
void gather(const Group &group, const T *local, int64_t count, T *whole) {
  checkNccl(
      ncclAllGather(local, whole, count, ncclType(local), group.comm, stream()),
      "ncclAllGather");
}

template <typename T>
void reduce(const Group &group, const T *local, int64_t count, T *sum) {
  checkNccl(ncclAllReduce(local, sum, count, ncclType(local), ncclSum,
                          group.comm, stream()),
            "ncclAllReduce");
}

/// The largest pitch of a 2D copy (2^31 - 1 bytes on current GPUs).
size_t maxPitch() {
  static const size_t pitch = [] {
    int device = 0, value = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&value, cudaDevAttrMaxPitch, device),
          "cudaDeviceGetAttribute (max pitch)");
    return static_cast<size_t>(value);
  }();
  return pitch;
}

/// This rank's block of each of the `outer` rows of a block per rank of
/// `group`: one
/// copy when there is one row, a 2D copy when the rows' pitch allows, else
/// a copy a row (a tensor over 2 GiB).
template <typename T>
void copyOwnBlock(const Group &group, const T *whole, int64_t outer,
                  int64_t count, T *part) {
  const char *what = "cudaMemcpyAsync (all_slice)";
  size_t block = count * sizeof(T), pitch = group.size * block;
  const T *from = whole + group.rank * count;
  if (outer == 1) {
    check(
        cudaMemcpyAsync(part, from, block, cudaMemcpyDeviceToDevice, stream()),
        what);
  } else if (pitch <= maxPitch()) {
    check(cudaMemcpy2DAsync(part, block, from, pitch, block, outer,
                            cudaMemcpyDeviceToDevice, stream()),
          what);
  } else {
    for (int64_t row = 0; row < outer; ++row)
      check(cudaMemcpyAsync(part + row * count, from + row * group.size * count,
                            block, cudaMemcpyDeviceToDevice, stream()),
            what);
  }
}

/// This rank's GPU. Where a node's ranks see all of its GPUs, the rank's in
/// node order; where a launcher gives each rank its own (CUDA_VISIBLE_DEVICES
/// per rank, srun --gpus-per-task=1), the one it sees. NCCL refuses two
/// ranks of a communicator on one GPU: so do we, saying what to change.
int pickDevice() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                      &node);
  int localRank = 0, localRanks = 1;
  MPI_Comm_rank(node, &localRank);
  MPI_Comm_size(node, &localRanks);
  int devices = 0;
  cudaError_t status = cudaGetDeviceCount(&devices);
  int device = devices >= localRanks ? localRank : 0;
  constexpr int kBusIdSize = 32;
  std::vector<char> busIds(kBusIdSize * localRanks);
  char *busId = busIds.data() + kBusIdSize * localRank;
  if (status == cudaSuccess)
    status = cudaDeviceGetPCIBusId(busId, kBusIdSize, device);
  // A rank without a GPU takes part too (an empty bus id), so that no rank
  // waits here for one that stopped.
  if (status != cudaSuccess)
    busId[0] = '\0';
  MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, busIds.data(), kBusIdSize,
                MPI_CHAR, node);
  MPI_Comm_free(&node);
  check(status, "finding this rank's GPU");
  for (int other = 0; other < localRanks; ++other) {
    const char *otherBusId = busIds.data() + kBusIdSize * other;
    if (otherBusId[0] == '\0')
      moert::fail("rank {} of this node found no usable GPU", other);
    if (other != localRank && std::strncmp(otherBusId, busId, kBusIdSize) == 0)
      moert::fail("{} ranks run on this node, and ranks {} and {} of them "
                  "would share its GPU {} (this rank sees {} GPU(s)): the "
                  "CUDA target needs a GPU per rank (start at most one rank "
                  "a GPU, or give each rank its own)",
                  localRanks, std::min(localRank, other),
                  std::max(localRank, other), busId, devices);
  }
  return device;
}

/// This rank's GPU and NCCL communicators, once `rank` has joined the MPI
/// group.
void joinNcclGroups(int32_t ranks, int32_t expertRanks) {
  check(cudaSetDevice(pickDevice()), "cudaSetDevice");
  ncclUniqueId id;
  if (rank == 0)
    checkNccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  std::vector<int64_t> shape = moert::modelGridShape(ranks, expertRanks);
  groups.byMask.assign(size_t(1) << shape.size(), Group());
  Group &whole = groups.byMask.back();
  whole.rank = rank;
  whole.size = ranks;
  checkNccl(ncclCommInitRank(&whole.comm, ranks, id, rank), "ncclCommInitRank");
  // The other axes' groups split the whole grid's communicator, all ranks
  // at once, before any step is captured.
  for (int32_t mask = 1; mask + 1 < static_cast<int32_t>(groups.byMask.size());
       ++mask) {
    moert::GridGroup mine =
        moert::gridGroup(shape, moert::axesOfMask(mask), rank);
    Group &group = groups.byMask[mask];
    group.rank = static_cast<int>(mine.index);
    group.size = static_cast<int>(mine.size);
    checkNccl(ncclCommSplit(whole.comm, static_cast<int>(mine.color),
                            group.rank, &group.comm, nullptr),
              "ncclCommSplit");
  }
}

} // namespace

int32_t moert::cuda::joinGroup(int32_t ranks, int32_t expertRanks) {
  rank = moert::cpu::joinGroup(ranks, expertRanks);
  try {
    joinNcclGroups(ranks, expertRanks);
  } catch (const moert::Error &error) {
    throw moert::GroupError(error.what(), rank);
  }
  return rank;
}

void moert::cuda::gatherBytes(int32_t gridAxes, const void *local,
                              int64_t bytes, void *whole) {
  moert::cpu::allGatherBytes(GridAxes{gridAxes}, local, bytes, whole);
}

void moert::cuda::leaveGroup() {
  if (!groups.byMask.empty()) {
    check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    releaseGraphs();
    for (Group &group : groups.byMask)
      if (group.comm)
        ncclCommDestroy(group.comm);
    groups.byMask.clear();
  }
  moert::cpu::leaveGroup();
}

double moert::cuda::collectiveSeconds() {
  return -1; // they run on the device, inside the step's graph
}

void moert::cuda::allGather(GridAxes axes, const float *local, int64_t count,
                            float *whole) {
  gather(groupOf(axes), local, count, whole);
}
void moert::cuda::allGather(GridAxes axes, const int32_t *local, int64_t count,
                            int32_t *whole) {
  gather(groupOf(axes), local, count, whole);
}
void moert::cuda::allGather(GridAxes axes, const int64_t *local, int64_t count,
                            int64_t *whole) {
  gather(groupOf(axes), local, count, whole);
}

void moert::cuda::allReduceSum(GridAxes axes, const float *local, int64_t count,
                               float *sum) {
  reduce(groupOf(axes), local, count, sum);
}
void moert::cuda::allReduceSum(GridAxes axes, const int64_t *local,
                               int64_t count, int64_t *sum) {
  reduce(groupOf(axes), local, count, sum);
}

void moert::cuda::reduceScatterSum(GridAxes axes, const float *local,
                                   int64_t count, float *part) {
  checkNccl(ncclReduceScatter(local, part, count, ncclFloat32, ncclSum,
                              groupOf(axes).comm, stream()),
            "ncclReduceScatter");
}

void moert::cuda::allToAll(GridAxes axes, const float *local, int64_t count,
                           int64_t, int64_t rowLength, float *received) {
  const Group &group = groupOf(axes);
  int32_t size = group.size;
  int64_t block = count / size;
  if (count % size != 0 || block % rowLength != 0)
    moert::fail("an all-to-all of {} values does not split over {} ranks into "
                "rows of {}",
                count, size, rowLength);
  checkNccl(ncclGroupStart(), "ncclGroupStart");
  for (int32_t peer = 0; peer < size; ++peer) {
    checkNccl(ncclSend(local + peer * block, block, ncclFloat32, peer,
                       group.comm, stream()),
              "ncclSend");
    checkNccl(ncclRecv(received + peer * block, block, ncclFloat32, peer,
                       group.comm, stream()),
              "ncclRecv");
  }
  checkNccl(ncclGroupEnd(), "ncclGroupEnd");
}

void moert::cuda::allSlice(GridAxes axes, const float *whole, int64_t outer,
                           int64_t count, float *part) {
  copyOwnBlock(groupOf(axes), whole, outer, count, part);
}
void moert::cuda::allSlice(GridAxes axes, const int32_t *whole, int64_t outer,
                           int64_t count, int32_t *part) {
  copyOwnBlock(groupOf(axes), whole, outer, count, part);
}
void moert::cuda::allSlice(GridAxes axes, const int64_t *whole, int64_t outer,
                           int64_t count, int64_t *part) {
  copyOwnBlock(groupOf(axes), whole, outer, count, part);
}
