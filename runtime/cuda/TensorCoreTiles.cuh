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

/// A thread's share of the stage tiles of one operand, each holding
/// Tile::kTileOuter outer indices by Tile::kTileK k, read as the matrix
/// stores them: k-contiguous rows [outer][k] (when Tile::kKContiguous) or
/// outer-contiguous rows [k][outer]; Tile::offset(row, chunk) places the
/// chunk-th 16 bytes of such a row. Tile::kThreads threads share the
/// copies, each the same chunk of every kPass-th stored row, so that its
/// sources are a pointer and fixed steps: the addresses and the bounds are
/// worked out once a term, not at every copy (the copies share the issue
/// slots of the warps that multiply). Copies are 16-byte cp.async where a
/// chunk is whole and `vector`, else values one by one; zero past the
/// limits.
template <typename Tile> class StageLoader {
  static constexpr bool KContiguous = Tile::kKContiguous;
  static constexpr int kChunksPerRow =
      (KContiguous ? Tile::kTileK : Tile::kTileOuter) / kChunk;
  static constexpr int kStoredRows =
      KContiguous ? Tile::kTileOuter : Tile::kTileK;
  static constexpr int kPass = Tile::kThreads / kChunksPerRow;
  static_assert(Tile::kThreads % kChunksPerRow == 0 && kStoredRows % kPass == 0,
                "each thread a fixed chunk of whole passes of rows");

  Operand op;
  bool vector;
  int row, chunk;    // the thread's first stored row, and its chunk
  const Bits *first; // the source of that row's chunk at step 0
  // k-contiguous: the stored rows from `row` the operand has (outer
  // indices); outer-contiguous: the values its chunk has (outer too).
  int64_t outerLeft;

public:
  __device__ StageLoader(const Operand &op, bool vector)
      : op(op), vector(vector), row(threadIdx.x / kChunksPerRow),
        chunk(threadIdx.x % kChunksPerRow) {
    int64_t matrixRow = KContiguous ? op.outer0 + row : row;
    int64_t matrixColumn = (KContiguous ? 0 : op.outer0) + chunk * kChunk;
    first = op.data + matrixRow * op.ld + matrixColumn;
    outerLeft =
        KContiguous ? op.outerLimit - matrixRow : op.outerLimit - matrixColumn;
  }

  /// Loads k-step `step` into `tile`.
  __device__ void load(int64_t step, Bits *tile) const {
    int64_t k0 = step * Tile::kTileK;
    // Stored rows from `row` in bounds, and values of each such row's chunk.
    int64_t rowsLeft = KContiguous ? outerLeft : op.kLimit - k0 - row;
    int64_t available =
        KContiguous ? op.kLimit - k0 - chunk * kChunk : outerLeft;
    int rows =
        static_cast<int>(rowsLeft < kStoredRows ? rowsLeft : kStoredRows);
    const Bits *from = first + (KContiguous ? k0 : k0 * op.ld);
    const int64_t rowStep = kPass * op.ld;
#pragma unroll
    for (int pass = 0; pass < kStoredRows / kPass; ++pass, from += rowStep) {
      Bits *to = tile + Tile::offset(row + pass * kPass, chunk);
      int64_t here = pass * kPass < rows ? available : 0;
      if (vector && here >= kChunk) {
        copyAsync(to, from);
        continue;
      }
      union {
        uint4 whole;
        Bits values[kChunk];
      } values;
      values.whole = make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int j = 0; j < kChunk; ++j)
        if (j < here)
          values.values[j] = from[j];
      *reinterpret_cast<uint4 *>(to) = values.whole;
    }
  }
};

/// A block's A and B of one term, staged a k-step at a time into the
/// tiles TileA and TileB.
template <typename TileA, typename TileB> struct StagedOperands {
  StageLoader<TileA> a;
  StageLoader<TileB> b;

  __device__ StagedOperands(const GroupedGemm<moert::bf16> &p,
                            const GroupedGemmBlock &block, int term,
                            bool vector)
      : a({reinterpret_cast<const Bits *>(p.a[block.problem][term]) +
               block.group * p.strideA,
           p.lda, block.row0, block.mLimit, block.kLimit},
          vector),
        b({reinterpret_cast<const Bits *>(p.b[block.problem][term]) +
               block.group * p.strideB,
           p.ldb, block.col0, p.n, block.kLimit},
          vector) {}

  /// Loads k-step `step` into a stage's tiles.
  __device__ void load(int64_t step, Bits *tileA, Bits *tileB) const {
    a.load(step, tileA);
    b.load(step, tileB);
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
