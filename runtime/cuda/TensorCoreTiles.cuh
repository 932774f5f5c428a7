//===- TensorCoreTiles.cuh - the bf16 grouped GEMMs' tiles ------*- C++ -*-===//
//
// What the kernels of the bf16 grouped GEMM share: mma.sync on every GPU
// from sm_80 (TensorCoreGemm.cu) and wgmma on sm_90a (WarpGroupGemm.cu, and
// WarpGroupTmaGemm.cu, whose stages TMA loads). The first two stage k-steps
// of operand tiles in shared memory by cp.async, each kernel in the layout
// its instructions read (a Tile policy says where a 16-byte chunk goes),
// and all hold C in the same 16 x 8 fragments (TensorCore.cuh's C layout).
// Internal to moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_TENSORCORETILES_CUH
#define MOERT_CUDA_TENSORCORETILES_CUH

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "TensorCore.cuh"

#include <cstdint>
#include <type_traits>

namespace moert::cuda::tensorcore {

/// One operand of a block: its group's matrix, the block's first outer
/// index (row of op(A) or column of op(B)), and where its values end.
struct Operand {
  const Bits *data;
  int64_t ld, outer0, outerLimit, kLimit;
};

/// Stage tile of k-step `step` from `op` (zero past the limits): 16-byte
/// copies where a chunk is whole and `vector`, else values one by one.
/// The stage holds Tile::kTileOuter outer indices by Tile::kTileK k, read
/// as the matrix stores them: k-contiguous rows [outer][k] (when
/// Tile::kKContiguous) or outer-contiguous rows [k][outer];
/// Tile::offset(row, chunk) places the chunk-th 16 bytes of such a row, and
/// Tile::kThreads threads share the copies.
template <typename Tile>
__device__ void loadStage(const Operand &op, int64_t step, bool vector,
                          Bits *tile) {
  constexpr bool KContiguous = Tile::kKContiguous;
  constexpr int kChunksPerRow =
      (KContiguous ? Tile::kTileK : Tile::kTileOuter) / kChunk;
  constexpr int kChunks = Tile::kTileOuter * Tile::kTileK / kChunk;
  static_assert(kChunks % Tile::kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int c = threadIdx.x; c < kChunks; c += Tile::kThreads) {
    int row = c / kChunksPerRow, chunk = c % kChunksPerRow;
    // Along the stored rows and columns of the matrix.
    int64_t k0 = step * Tile::kTileK;
    int64_t matrixRow = KContiguous ? op.outer0 + row : k0 + row;
    int64_t matrixColumn =
        (KContiguous ? k0 : op.outer0) + int64_t(chunk) * kChunk;
    int64_t rowLimit = KContiguous ? op.outerLimit : op.kLimit;
    int64_t columnLimit = KContiguous ? op.kLimit : op.outerLimit;
    int64_t available = matrixRow < rowLimit ? columnLimit - matrixColumn : 0;
    Bits *to = tile + Tile::offset(row, chunk);
    if (vector && available >= kChunk) {
      copyAsync(to, op.data + matrixRow * op.ld + matrixColumn);
      continue;
    }
    union {
      uint4 whole;
      Bits values[kChunk];
    } values;
    values.whole = make_uint4(0, 0, 0, 0);
    if (available > 0) {
      const Bits *from = op.data + matrixRow * op.ld + matrixColumn;
#pragma unroll
      for (int j = 0; j < kChunk; ++j)
        if (j < available)
          values.values[j] = from[j];
    }
    *reinterpret_cast<uint4 *>(to) = values.whole;
  }
}

/// A block's A and B of one term, staged a k-step at a time into the
/// tiles TileA and TileB.
template <typename TileA, typename TileB> struct StagedOperands {
  Operand a, b;
  bool vector;

  __device__ StagedOperands(const GroupedGemm<moert::bf16> &p,
                            const GroupedGemmBlock &block, int term,
                            bool vector)
      : a{reinterpret_cast<const Bits *>(p.a[block.problem][term]) +
              block.group * p.strideA,
          p.lda, block.row0, block.mLimit, block.kLimit},
        b{reinterpret_cast<const Bits *>(p.b[block.problem][term]) +
              block.group * p.strideB,
          p.ldb, block.col0, p.n, block.kLimit},
        vector(vector) {}

  /// Loads k-step `step` into a stage's tiles.
  __device__ void load(int64_t step, Bits *tileA, Bits *tileB) const {
    loadStage<TileA>(a, step, vector, tileA);
    loadStage<TileB>(b, step, vector, tileB);
  }
};

/// The block's group's C.
__device__ inline float *outputOf(const GroupedGemm<moert::bf16> &p,
                                  const GroupedGemmBlock &block) {
  return p.c[block.problem] + block.group * p.strideC;
}

/// Stores a 16 x 8 fragment of C (TensorCore.cuh's C layout, this lane's
/// four values) whose first element is (row, col) of `c`; rows from
/// mLimit and columns from n are not C's and stay unwritten. `pairedC`:
/// a lane's two columns go as one float2.
__device__ inline void storeFragment(float *c, int64_t ldc, int64_t n,
                                     int64_t mLimit, int64_t row, int64_t col,
                                     const float *fragment, bool pairedC) {
  int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
  col += 2 * t;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    int64_t at = row + g + 8 * half;
    if (at >= mLimit)
      continue;
    float *out = c + at * ldc + col;
    float first = fragment[2 * half], second = fragment[2 * half + 1];
    if (pairedC && col + 1 < n) {
      *reinterpret_cast<float2 *>(out) = make_float2(first, second);
    } else {
      if (col < n)
        out[0] = first;
      if (col + 1 < n)
        out[1] = second;
    }
  }
}

/// How a launch may access memory: 16-byte copies of A and B (every row
/// start 16-byte aligned) and float2 stores to C (8-byte aligned).
struct Access {
  bool vector, pairedC;
};
Access accessOf(const GroupedGemm<moert::bf16> &gemm);

/// Calls launch(std::bool_constant<transA>, std::bool_constant<transB>)
/// with `gemm`'s transpositions: each kernel is instantiated for all four.
template <typename Launch>
void withTranspositions(const GroupedGemm<moert::bf16> &gemm, Launch &&launch) {
  using Yes = std::true_type;
  using No = std::false_type;
  if (gemm.transA)
    gemm.transB ? launch(Yes{}, Yes{}) : launch(Yes{}, No{});
  else
    gemm.transB ? launch(No{}, Yes{}) : launch(No{}, No{});
}

/// Launches `gemm` (non-empty) on wgmma; only where warpGroupGemmAvailable.
void launchWarpGroupGemm(const GroupedGemm<moert::bf16> &gemm, Access access,
                         const char *name);
/// Launches `gemm` (non-empty) on wgmma with TMA's copies and returns
/// true, or returns false where TMA cannot read its operands
/// (warpGroupTmaReads); only where warpGroupGemmAvailable.
bool launchWarpGroupTmaGemm(const GroupedGemm<moert::bf16> &gemm, Access access,
                            const char *name);

} // namespace moert::cuda::tensorcore

#endif // MOERT_CUDA_TENSORCORETILES_CUH
