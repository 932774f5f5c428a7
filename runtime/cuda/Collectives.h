//===- Collectives.h - the CUDA target's process group ----------*- C++ -*-===//
//
// One process per GPU, launched by mpirun: MPI finds the ranks and hands
// out the NCCL id, NCCL runs the collectives on the step's stream.
// Internal to moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_COLLECTIVES_H
#define MOERT_CUDA_COLLECTIVES_H

#include <cstdint>

namespace moert::cuda {

/// Joins the group of `ranks` ranks of which `expertRanks` share the
/// experts (MPI), picks this rank's GPU among the node's and opens the NCCL
/// communicators of the grid's axes; returns the rank.
int32_t joinGroup(int32_t ranks, int32_t expertRanks);
/// The `bytes` bytes of host memory of every rank of grid axes `gridAxes`
/// (a mask), in their order.
void gatherBytes(int32_t gridAxes, const void *local, int64_t bytes,
                 void *whole);
void leaveGroup();
/// -1: the collectives run on the device inside the step's graph, where
/// the host cannot time them apart without waiting (--profile's events do).
double collectiveSeconds();

} // namespace moert::cuda

#endif // MOERT_CUDA_COLLECTIVES_H
