//===- WarpGroupTmaGemm.cu - the Hopper grouped GEMM fed by TMA
//------------===//
//
// groupedGemm over bf16 operands on sm_90a with WarpGroupMma.cuh's tiles and
// products, its stages loaded by the Tensor Memory Accelerator, as
// CUTLASS's warp-specialized Hopper GEMMs do: one thread of a producer warp
// group issues each stage's 64 x 64 box copies, and the two warp groups
// that multiply do nothing else. On an H200 the cp.async kernel
// (WarpGroupGemm.cu), whose multiplying warps also work out every 16-byte
// chunk's address, kept its tensor cores busy 40% of the cycles, its
// integer pipe the busiest (Nsight Compute; docs/CudaTarget.md).
//
// A stage changes hands through two mbarriers: `full` completes when its
// copies have landed (the producer says how many bytes to expect), `empty`
// when both warp groups' wgmma of it are done (one arrival each, after
// wgmma.wait_group). Four stages of 48 KiB; the producer gives its
// registers up to the accumulators (setmaxnreg).
//
// The contract is groupedGemm's. TMA reads each operand as a [groups]
// [rows][columns] tensor of its static shape, so values past that land as
// 0; a counted k past a group's count lies within it, so the multiplying
// warps zero those values in a term's last stage before they multiply it.
// Rows of A past a counted m are read (garbage) but reach only rows of C
// that are not stored, as do B's columns past n; boxes wholly past either
// are not loaded. Each C element is one thread's fixed-order sum.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "Support.h"
#include "TensorCoreTiles.cuh"
#include "WarpGroupMma.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdint>

using namespace moert::cuda;
using namespace moert::cuda::tensorcore;
using namespace moert::cuda::tensorcore::wgmma;

namespace {

constexpr int kStages = 4;
constexpr int kThreads = kMmaThreads + 128; // and the producer warp group
constexpr int kBox = 64;                    // a box copy is kBox x kBox values
static_assert(kBox == kTileK && kBox * sizeof(Bits) == kRowBytes,
              "a box is a k-step's swizzled rows of one outer block");
// The stages, then each stage's two mbarriers; the extra bytes let the
// kernel align the stages.
constexpr size_t kSharedBytes = size_t(kStages) * kStageValues * sizeof(Bits) +
                                2 * kStages * sizeof(uint64_t) + kAtomBytes;

/// Each operand's tensor map, by problem and term.
struct TensorMaps {
  CUtensorMap a[GroupedGemm<moert::bf16>::kMaxProblems]
               [GroupedGemm<moert::bf16>::kMaxTerms];
  CUtensorMap b[GroupedGemm<moert::bf16>::kMaxProblems]
               [GroupedGemm<moert::bf16>::kMaxTerms];
};

#ifdef MOERT_WGMMA_DEVICE_CODE
constexpr int kBoxValues = kBox * kBox;
// Registers a thread after setmaxnreg: the producer's give the
// accumulators what they take of the 64 K that a block of kThreads starts
// with (a multiple of 8 each), or setmaxnreg.inc waits forever.
constexpr int kProducerRegisters = 40, kMmaRegisters = 232;
static_assert(128 * kProducerRegisters + kMmaThreads * kMmaRegisters <=
                  kThreads * (65536 / kThreads / 8 * 8),
              "the registers that setmaxnreg moves balance");

__device__ inline uint32_t sharedAddress(const void *pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}
__device__ inline void initBarrier(uint64_t *barrier, int arrivals) {
  asm volatile(
      "mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(sharedAddress(barrier)),
      "r"(arrivals)
      : "memory");
}
__device__ inline void arrive(uint64_t *barrier) {
  asm volatile("{\n"
               ".reg .b64 state;\n"
               "mbarrier.arrive.shared::cta.b64 state, [%0];\n"
               "}" ::"r"(sharedAddress(barrier))
               : "memory");
}
/// Arrives at `barrier` and adds `bytes` to the copies its phase awaits.
__device__ inline void arriveExpecting(uint64_t *barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(
                   sharedAddress(barrier)),
               "r"(bytes)
               : "memory");
}
__device__ inline bool phaseDone(uint64_t *barrier, uint32_t parity) {
  uint32_t done;
  asm volatile("{\n"
               ".reg .pred done;\n"
               "mbarrier.try_wait.parity.shared::cta.b64 done, [%1], %2;\n"
               "selp.u32 %0, 1, 0, done;\n"
               "}"
               : "=r"(done)
               : "r"(sharedAddress(barrier)), "r"(parity)
               : "memory");
  return done != 0;
}
/// Waits for the phase of `barrier` with `parity` to complete. An arrival
/// that never comes (a bug) traps after 10 s instead of hanging the GPU:
/// the clock starts at the first failed try and is read every 256 (each
/// try may suspend the thread a while, so not only every 4096).
__device__ inline void waitFor(uint64_t *barrier, uint32_t parity) {
  uint64_t deadline = 0;
  for (uint32_t tries = 0; !phaseDone(barrier, parity); ++tries) {
    if (tries % 256 != 0)
      continue;
    uint64_t now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    if (deadline == 0)
      deadline = now + 10'000'000'000ull;
    else if (now > deadline)
      __trap();
  }
}
/// Copies the box of `map` at (inner, outer, group), innermost first, to
/// `to`, completing bytes of `barrier`'s phase.
__device__ inline void loadBox(Bits *to, const CUtensorMap &map, int inner,
                               int outer, int group, uint64_t *barrier) {
  asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::"
               "complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];" ::"r"(
                   sharedAddress(to)),
               "l"(&map), "r"(sharedAddress(barrier)), "r"(inner), "r"(outer),
               "r"(group)
               : "memory");
}

/// The boxes of a k-step of an operand's tile (`Outer` rows of op(A) or
/// columns of op(B) from outer0): its blocks of kBox outer that start
/// before outerLimit. The others are not loaded: wgmma reads whatever an
/// earlier stage left there, which reaches only rows or columns of C that
/// are not stored.
template <typename Tile>
__device__ int boxesOf(int64_t outer0, int64_t outerLimit) {
  int64_t boxes = (outerLimit - outer0 + kBox - 1) / kBox;
  return static_cast<int>(
      boxes < Tile::kTileOuter / kBox ? boxes : Tile::kTileOuter / kBox);
}

/// Loads the first `boxes` boxes of k-step `step` of an operand's tile
/// from outer0 onto `barrier`'s phase.
template <typename Tile>
__device__ void loadTile(Bits *tile, const CUtensorMap &map, int64_t outer0,
                         int boxes, int64_t step, int64_t group,
                         uint64_t *barrier) {
  int k = static_cast<int>(step * kTileK);
  for (int box = 0; box < boxes; ++box) {
    int outer = static_cast<int>(outer0 + box * kBox);
    // Boxes are [kBox rows][128 bytes]: in the tile's layout, box b
    // starts at kBoxValues b either way.
    Tile::kKContiguous
        ? loadBox(tile + box * kBoxValues, map, k, outer, int(group), barrier)
        : loadBox(tile + box * kBoxValues, map, outer, k, int(group), barrier);
  }
}

/// Zeroes the values of a stage tile from k index `kEnd` on: the
/// kMmaThreads threads that multiply share it (`thread` of them).
template <typename Tile>
__device__ void zeroFromK(Bits *tile, int kEnd, int thread) {
  constexpr int kChunksPerRow = kRowBytes / 16;
  constexpr int kChunks = Tile::kTileOuter * kTileK / kChunk;
  for (int c = thread; c < kChunks; c += kMmaThreads) {
    // Stored rows of 128 bytes: [outer][k] or, by outer block, [k][outer].
    int row = c / kChunksPerRow % Tile::kRows,
        chunk = c % kChunksPerRow +
                c / (kChunksPerRow * Tile::kRows) * kChunksPerRow;
    Bits *values = tile + Tile::offset(row, chunk);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      int k = Tile::kKContiguous ? chunk * kChunk + j : row;
      if (k >= kEnd)
        values[j] = 0;
    }
  }
}
#endif

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kThreads, 1)
    tmaGemmKernel(const __grid_constant__ TensorMaps maps,
                  GroupedGemm<moert::bf16> p, bool pairedC) {
#ifdef MOERT_WGMMA_DEVICE_CODE
  using TileA = TileOfA<TransA>;
  using TileB = TileOfB<TransB>;
  extern __shared__ __align__(16) unsigned char shared[];
  StageRing<kStages> stages(shared);
  auto *full = reinterpret_cast<uint64_t *>(stages.end());
  uint64_t *empty = full + kStages;

  GroupedGemmBlock block = blockOf(p, kTileM, kTileN);
  if (block.row0 >= block.mLimit)
    return; // past the group's rows: nothing to read or write
  if (threadIdx.x == 0) {
    for (int stage = 0; stage < kStages; ++stage) {
      initBarrier(&full[stage], 1);
      initBarrier(&empty[stage], kWarpGroups);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();

  // Every term's k-steps go through the ring of stages in turn; a stage's
  // barriers complete a phase each time round (counters, not divisions,
  // in the loops: the integer pipe is what held the cp.async kernel back).
  int64_t steps = (block.kLimit + kTileK - 1) / kTileK;
  int warpGroup = threadIdx.x / 128;
  int stage = 0;
  uint32_t phase = 0;
  auto advance = [&] {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
  };
  if (warpGroup == kWarpGroups) {
    asm volatile(
        "setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegisters));
    if (threadIdx.x % 128 != 0)
      return;
    int boxesA = boxesOf<TileA>(block.row0, block.mLimit),
        boxesB = boxesOf<TileB>(block.col0, p.n);
    uint32_t stageBytes = (boxesA + boxesB) * kBoxValues * sizeof(Bits);
    for (int term = 0; term < p.terms; ++term)
      for (int64_t step = 0; step < steps; ++step, advance()) {
        // The first round finds every stage empty (the phase before the
        // first counts as complete).
        waitFor(&empty[stage], phase ^ 1);
        arriveExpecting(&full[stage], stageBytes);
        loadTile<TileA>(stages.tileA(stage), maps.a[block.problem][term],
                        block.row0, boxesA, step, block.group, &full[stage]);
        loadTile<TileB>(stages.tileB(stage), maps.b[block.problem][term],
                        block.col0, boxesB, step, block.group, &full[stage]);
      }
    return;
  }

  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kMmaRegisters));
  float acc[kAccumulators] = {};
  int previous = -1; // the stage that the last step multiplied
  for (int term = 0; term < p.terms; ++term)
    for (int64_t step = 0; step < steps; ++step, advance()) {
      waitFor(&full[stage], phase);
      __syncwarp(); // wgmma and bar.sync want the warp converged
      int64_t kEnd = block.kLimit - step * kTileK;
      if (p.counted == CountedDim::K && kEnd < kTileK) {
        // Past a counted k (TMA zeroed what lies past the static k): zero,
        // for wgmma to read through the async proxy once both warp groups
        // have.
        zeroFromK<TileA>(stages.tileA(stage), int(kEnd), threadIdx.x);
        zeroFromK<TileB>(stages.tileB(stage), int(kEnd), threadIdx.x);
        fenceToAsyncProxy();
        asm volatile("bar.sync 1, %0;" ::"n"(kMmaThreads) : "memory");
      }
      multiplyStage<TransA, TransB>(acc, stages.tileA(stage),
                                    stages.tileB(stage), warpGroup);
      // The previous step's wgmma is done: hand its stage back.
      warpGroupWait<1>();
      fenceAccumulators(acc);
      if (previous >= 0 && threadIdx.x % 128 == 0)
        arrive(&empty[previous]);
      previous = stage;
    }
  warpGroupWait<0>();
  fenceAccumulators(acc);
  storeAccumulators(p, block, warpGroup, acc, pairedC);
#else
  __trap(); // launched only where warpGroupGemmAvailable (sm_90a code)
#endif
}

/// cuTensorMapEncodeTiled, from the driver the runtime loaded (the
/// runtime library alone links no driver symbol); null where it has none.
PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
  static const auto encoder = [] {
    void *function = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &function,
                                         12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      function = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(function);
  }();
  return encoder;
}

/// The tensor map of one operand: `groups` matrices `stride` values apart
/// of `rows` x `columns` bf16 values, rows `ld` apart, read as kBox x kBox
/// boxes in the 128-byte swizzle. False where TMA cannot read it (an
/// address or stride off 16 bytes, a group stride below a matrix).
bool encodeOperand(CUtensorMap &map, const moert::bf16 *data, int64_t groups,
                   int64_t rows, int64_t columns, int64_t ld, int64_t stride) {
  auto encode = tensorMapEncoder();
  if (!encode || !aligned16(data) || rows <= 0 || columns <= 0)
    return false;
  constexpr int64_t kValueBytes = sizeof(moert::bf16);
  cuuint64_t dims[3] = {cuuint64_t(columns), cuuint64_t(rows),
                        cuuint64_t(groups)};
  cuuint64_t strides[2] = {
      cuuint64_t(ld * kValueBytes),
      cuuint64_t((groups > 1 ? stride : rows * ld) * kValueBytes)};
  cuuint32_t box[3] = {kBox, kBox, 1}, elementStrides[3] = {1, 1, 1};
  return encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3,
                const_cast<moert::bf16 *>(data), dims, strides, box,
                elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/// Every operand's tensor map; false where TMA cannot read one.
bool encodeOperands(const GroupedGemm<moert::bf16> &gemm, TensorMaps &maps) {
  // Stored shapes: A is [m, k] or [k, m], B [k, n] or [n, k].
  int64_t aRows = gemm.transA ? gemm.k : gemm.m,
          aColumns = gemm.transA ? gemm.m : gemm.k;
  int64_t bRows = gemm.transB ? gemm.n : gemm.k,
          bColumns = gemm.transB ? gemm.k : gemm.n;
  for (int problem = 0; problem < gemm.problems; ++problem)
    for (int term = 0; term < gemm.terms; ++term)
      if (!encodeOperand(maps.a[problem][term], gemm.a[problem][term],
                         gemm.groups, aRows, aColumns, gemm.lda,
                         gemm.strideA) ||
          !encodeOperand(maps.b[problem][term], gemm.b[problem][term],
                         gemm.groups, bRows, bColumns, gemm.ldb, gemm.strideB))
        return false;
  return true;
}

template <bool TransA, bool TransB>
void launch(const TensorMaps &maps, const GroupedGemm<moert::bf16> &gemm,
            Access access, const char *name) {
  auto kernel = tmaGemmKernel<TransA, TransB>;
  static const size_t bytes = allowWarpGroupShared(kernel, kSharedBytes);
  kernel<<<gridOf(gemm, kTileM, kTileN), kThreads, bytes, stream()>>>(
      maps, gemm, access.pairedC);
  checkLaunch(name);
}

} // namespace

bool moert::cuda::warpGroupTmaReads(const GroupedGemm<moert::bf16> &gemm) {
  TensorMaps maps;
  return encodeOperands(gemm, maps);
}

bool moert::cuda::tensorcore::launchWarpGroupTmaGemm(
    const GroupedGemm<moert::bf16> &gemm, Access access, const char *name) {
  TensorMaps maps;
  if (!encodeOperands(gemm, maps))
    return false;
  withTranspositions(gemm, [&](auto transA, auto transB) {
    launch<transA, transB>(maps, gemm, access, name);
  });
  return true;
}
