//===- GroupedGemmBlock.cuh - a grouped GEMM block's share -----*- C++ -*-===//
//
// The grid of every grouped GEMM kernel (GroupedGemm.cu, TensorCoreGemm.cu,
// WarpGroupGemm.cu) and what a block takes from its place in it: x the
// column tiles, y the row tiles, z the (problem, group) pairs. Internal to
// moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_GROUPEDGEMMBLOCK_CUH
#define MOERT_CUDA_GROUPEDGEMMBLOCK_CUH

#include "GroupedGemm.h"

#include <cstdint>

namespace moert::cuda {

/// The block's group and problem, its first row and column of C, and where
/// the group's rows (of op(A) and C) and k end: at its count where that
/// dimension is counted.
struct GroupedGemmBlock {
  int64_t group;
  int problem;
  int64_t mLimit, kLimit, row0, col0;
};

/// The grid of `p` over tiles of tileM x tileN of C.
template <typename T>
inline dim3 gridOf(const GroupedGemm<T> &p, int tileM, int tileN) {
  return dim3(static_cast<unsigned>((p.n + tileN - 1) / tileN),
              static_cast<unsigned>((p.m + tileM - 1) / tileM),
              static_cast<unsigned>(p.groups * p.problems));
}

/// This block's share of `p`, over tiles of tileM x tileN of C.
template <typename T>
__device__ GroupedGemmBlock blockOf(const GroupedGemm<T> &p, int tileM,
                                    int tileN) {
  int64_t group = blockIdx.z % p.groups, count = p.counts[group];
  return {group,
          static_cast<int>(blockIdx.z / p.groups),
          p.counted == CountedDim::M ? count : p.m,
          p.counted == CountedDim::K ? count : p.k,
          int64_t(blockIdx.y) * tileM,
          int64_t(blockIdx.x) * tileN};
}

} // namespace moert::cuda

#endif // MOERT_CUDA_GROUPEDGEMMBLOCK_CUH
