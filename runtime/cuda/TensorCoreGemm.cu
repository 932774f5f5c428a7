//===- TensorCoreGemm.cu - the experts' grouped GEMM on tensor cores ------===//
//
// groupedGemm over bf16 operands: mma.sync m16n8k16 with f32 accumulation
// (TensorCore.cuh), reading each group's count on the device like the f32
// kernel (GroupedGemm.cu), so that a dropless layer's experts, whose
// queues hold every token, cost their filled rows and not their capacity.
//
// A block computes a 128 x 128 tile of C with 4 warps of 64 x 64 (the
// shape of CUTLASS's sm_80 bf16 GEMMs: a warp's 16-wide k-step takes 8
// ldmatrix for 32 mma, where 64 x 32 warps take 6 for 16 and run short
// of shared-memory bandwidth on Hopper's faster tensor cores), over
// k-steps of 32 staged in shared memory by cp.async, three steps in
// flight; about 210 registers a thread, two blocks an SM. Each operand's
// tile is stored as the matrix is, k-contiguous ([outer][k]) or
// outer-contiguous ([k][outer]), rows padded by 8 values so that
// ldmatrix's 8 rows of 16 bytes fall in distinct banks; ldmatrix (.trans
// for outer-contiguous tiles) then hands out the fragments of either. Tiles past a group's counted rows are skipped, and every value
// of a counted row or k index past the count is 0 instead of memory.
//
// Each C element is one thread's sum in a fixed order: deterministic, and
// different from the CPU's oneDNN in summation order only.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "Support.h"
#include "TensorCore.cuh"

#include <cstdint>

using namespace moert::cuda;
using tensorcore::Bits;

namespace {

constexpr int kTile = 128; // rows and columns of a block's tile of C
constexpr int kTileK = 32; // k of a stage
constexpr int kStages = 3; // k-steps in flight
constexpr int kPad = 8;    // values after each stored row of a stage
constexpr int kWarpRows = 64, kWarpColumns = 64;
constexpr int kGemmThreads = 32 * (kTile / kWarpRows) * (kTile / kWarpColumns);
constexpr int kChunk = 8; // values a 16-byte copy moves

/// A stage's tile of one operand as it is stored: [kTile][kTileK] when
/// k-contiguous, else [kTileK][kTile], each row padded.
template <bool KContiguous> struct StageTile {
  static constexpr int kRows = KContiguous ? kTile : kTileK;
  static constexpr int kLd = (KContiguous ? kTileK : kTile) + kPad;
  static constexpr int kValues = kRows * kLd;
  static constexpr int kChunks = kTile * kTileK / kChunk;
  static_assert(kChunks % kGemmThreads == 0, "whole chunks per thread");
  static_assert(kLd % kChunk == 0, "16-byte aligned rows");
};

/// Copies 16 bytes from global to shared memory without the registers.
__device__ inline void copyAsync(Bits *shared, const Bits *global) {
  uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(address),
               "l"(global));
}
__device__ inline void commitCopies() {
  asm volatile("cp.async.commit_group;");
}
/// Waits until at most `Pending` committed groups of copies are in flight.
template <int Pending> __device__ inline void awaitCopies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(Pending));
}

/// One operand of a block: its group's matrix, the block's first outer
/// index (row of op(A) or column of op(B)), and where its values end.
struct Operand {
  const Bits *data;
  int64_t ld, outer0, outerLimit, kLimit;
};

/// Stage tile of k-step `step` from `op` (zero past the limits): 16-byte
/// copies where a chunk is whole and `vector`, else values one by one.
template <bool KContiguous>
__device__ void loadStage(const Operand &op, int64_t step, bool vector,
                          Bits *tile) {
  using Tile = StageTile<KContiguous>;
  constexpr int kChunksPerRow = (KContiguous ? kTileK : kTile) / kChunk;
#pragma unroll
  for (int c = threadIdx.x; c < Tile::kChunks; c += kGemmThreads) {
    int row = c / kChunksPerRow, column = c % kChunksPerRow * kChunk;
    // Along the stored rows and columns of the matrix.
    int64_t k0 = step * kTileK;
    int64_t matrixRow = KContiguous ? op.outer0 + row : k0 + row;
    int64_t matrixColumn = KContiguous ? k0 + column : op.outer0 + column;
    int64_t rowLimit = KContiguous ? op.outerLimit : op.kLimit;
    int64_t columnLimit = KContiguous ? op.kLimit : op.outerLimit;
    int64_t available = matrixRow < rowLimit ? columnLimit - matrixColumn : 0;
    Bits *to = tile + row * Tile::kLd + column;
    if (vector && available >= kChunk) {
      copyAsync(to, op.data + matrixRow * op.ld + matrixColumn);
      continue;
    }
    union {
      uint4 whole;
      Bits values[kChunk];
    } chunk;
    chunk.whole = make_uint4(0, 0, 0, 0);
    if (available > 0) {
      const Bits *from = op.data + matrixRow * op.ld + matrixColumn;
#pragma unroll
      for (int j = 0; j < kChunk; ++j)
        if (j < available)
          chunk.values[j] = from[j];
    }
    *reinterpret_cast<uint4 *>(to) = chunk.whole;
  }
}

/// The four 8 x 8 blocks (outer0 | outer0 + 8) x (k0 | k0 + 8), in that
/// order, of a stage tile: an A fragment of rows outer0.., or the B
/// fragments of n-tiles outer0 (blocks 0 and 2) and outer0 + 8 (1 and 3).
template <bool KContiguous>
__device__ inline void loadFragments(uint32_t (&blocks)[4], const Bits *tile,
                                     int outer0, int k0) {
  constexpr int kLd = StageTile<KContiguous>::kLd;
  int lane = threadIdx.x % 32, block = lane / 8, row = lane % 8;
  int outer = outer0 + block % 2 * 8, k = k0 + block / 2 * 8;
  if constexpr (KContiguous)
    tensorcore::loadMatrices(blocks, tile + (outer + row) * kLd + k);
  else
    tensorcore::loadMatricesTransposed(blocks, tile + (k + row) * kLd + outer);
}

template <bool TransA, bool TransB> struct Layout {
  static constexpr bool kAContiguous = !TransA; // A is [m][k]
  static constexpr bool kBContiguous = TransB;  // B is [n][k]
  static constexpr int kStageValues =
      StageTile<kAContiguous>::kValues + StageTile<kBContiguous>::kValues;
  static constexpr size_t kSharedBytes =
      size_t(kStages) * kStageValues * sizeof(Bits);
};

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kGemmThreads, 2)
    tensorCoreGemmKernel(GroupedGemm<moert::bf16> p, bool vector,
                         bool pairedC) {
  using L = Layout<TransA, TransB>;
  extern __shared__ __align__(16) Bits stages[];
  auto tileA = [&](int stage) { return stages + stage * L::kStageValues; };
  auto tileB = [&](int stage) {
    return tileA(stage) + StageTile<L::kAContiguous>::kValues;
  };

  auto [group, problem, mLimit, kLimit, row0, col0] = blockOf(p, kTile, kTile);
  if (row0 >= mLimit)
    return; // past the group's rows: nothing to read or write

  int warp = threadIdx.x / 32;
  int warpRow = warp / (kTile / kWarpColumns) * kWarpRows;
  int warpColumn = warp % (kTile / kWarpColumns) * kWarpColumns;
  constexpr int kMTiles = kWarpRows / 16, kNTiles = kWarpColumns / 8;
  float acc[kMTiles][kNTiles][4] = {};
  int64_t steps = (kLimit + kTileK - 1) / kTileK;
  for (int term = 0; term < p.terms; ++term) {
    auto *aData = reinterpret_cast<const Bits *>(p.a[problem][term]);
    auto *bData = reinterpret_cast<const Bits *>(p.b[problem][term]);
    Operand a{aData + group * p.strideA, p.lda, row0, mLimit, kLimit};
    Operand b{bData + group * p.strideB, p.ldb, col0, p.n, kLimit};
    // The first kStages - 1 steps; a group is committed for every stage,
    // empty or not, so that counting groups counts stages.
#pragma unroll
    for (int stage = 0; stage < kStages - 1; ++stage) {
      if (stage < steps) {
        loadStage<L::kAContiguous>(a, stage, vector, tileA(stage));
        loadStage<L::kBContiguous>(b, stage, vector, tileB(stage));
      }
      commitCopies();
    }
    for (int64_t step = 0; step < steps; ++step) {
      awaitCopies<kStages - 2>(); // this step's stage has landed
      __syncthreads(); // and every warp is done with the stage refilled next
      int64_t next = step + kStages - 1;
      if (next < steps) {
        int stage = static_cast<int>(next % kStages);
        loadStage<L::kAContiguous>(a, next, vector, tileA(stage));
        loadStage<L::kBContiguous>(b, next, vector, tileB(stage));
      }
      commitCopies();

      int stage = static_cast<int>(step % kStages);
      const Bits *as = tileA(stage), *bs = tileB(stage);
#pragma unroll
      for (int k0 = 0; k0 < kTileK; k0 += 16) {
        uint32_t aFragments[kMTiles][4], bBlocks[kNTiles / 2][4];
#pragma unroll
        for (int i = 0; i < kMTiles; ++i)
          loadFragments<L::kAContiguous>(aFragments[i], as, warpRow + 16 * i,
                                         k0);
#pragma unroll
        for (int j = 0; j < kNTiles / 2; ++j)
          loadFragments<L::kBContiguous>(bBlocks[j], bs, warpColumn + 16 * j,
                                         k0);
#pragma unroll
        for (int i = 0; i < kMTiles; ++i)
#pragma unroll
          for (int j = 0; j < kNTiles; ++j)
            tensorcore::mma(acc[i][j], aFragments[i], bBlocks[j / 2][j % 2],
                            bBlocks[j / 2][j % 2 + 2]);
      }
    }
    awaitCopies<0>();
    __syncthreads(); // the next term refills every stage
  }

  float *c = p.c[problem] + group * p.strideC;
  int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
  for (int i = 0; i < kMTiles; ++i)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      int64_t row = row0 + warpRow + 16 * i + g + 8 * half;
      if (row >= mLimit)
        continue;
#pragma unroll
      for (int j = 0; j < kNTiles; ++j) {
        int64_t col = col0 + warpColumn + 8 * j + 2 * t;
        float *out = c + row * p.ldc + col;
        float first = acc[i][j][2 * half], second = acc[i][j][2 * half + 1];
        if (pairedC && col + 1 < p.n) {
          *reinterpret_cast<float2 *>(out) = make_float2(first, second);
        } else {
          if (col < p.n)
            out[0] = first;
          if (col + 1 < p.n)
            out[1] = second;
        }
      }
    }
}

template <bool TransA, bool TransB>
void launch(const GroupedGemm<moert::bf16> &gemm, bool vector, bool pairedC,
            const char *name) {
  auto kernel = tensorCoreGemmKernel<TransA, TransB>;
  // Once per kernel: over the default 48 KiB of shared memory.
  static const size_t bytes = allowSharedBytes(
      kernel, Layout<TransA, TransB>::kSharedBytes, "moert::cuda::groupedGemm");
  dim3 grid(static_cast<unsigned>((gemm.n + kTile - 1) / kTile),
            static_cast<unsigned>((gemm.m + kTile - 1) / kTile),
            static_cast<unsigned>(gemm.groups * gemm.problems));
  kernel<<<grid, kGemmThreads, bytes, stream()>>>(gemm, vector, pairedC);
  checkLaunch(name);
}

} // namespace

void moert::cuda::groupedGemm(const GroupedGemm<moert::bf16> &gemm,
                              const char *name) {
  if (gemm.groups == 0 || gemm.m == 0 || gemm.n == 0 || gemm.problems == 0)
    return;
  // 16-byte copies need every row start 16-byte aligned, float2 stores
  // every C row start 8-byte aligned.
  bool vector = gemm.lda % kChunk == 0 && gemm.ldb % kChunk == 0 &&
                gemm.strideA % kChunk == 0 && gemm.strideB % kChunk == 0;
  bool pairedC = gemm.ldc % 2 == 0 && gemm.strideC % 2 == 0;
  for (int problem = 0; problem < gemm.problems; ++problem) {
    pairedC = pairedC && reinterpret_cast<uintptr_t>(gemm.c[problem]) % 8 == 0;
    for (int term = 0; term < gemm.terms; ++term)
      vector = vector && aligned16(gemm.a[problem][term]) &&
               aligned16(gemm.b[problem][term]);
  }
  if (gemm.transA)
    gemm.transB ? launch<true, true>(gemm, vector, pairedC, name)
                : launch<true, false>(gemm, vector, pairedC, name);
  else
    gemm.transB ? launch<false, true>(gemm, vector, pairedC, name)
                : launch<false, false>(gemm, vector, pairedC, name);
}
