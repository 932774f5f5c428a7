//===- TensorCoreGemm.cu - the experts' grouped GEMM on tensor cores ------===//
//
// groupedGemm over bf16 operands: mma.sync m16n8k16 with f32 accumulation
// (TensorCore.cuh), reading each group's count on the device like the f32
// kernel (GroupedGemm.cu), so that a dropless layer's experts, whose
// queues hold every token, cost their filled rows and not their capacity.
// It runs on every GPU from sm_80; on sm_90 groupedGemm launches the wgmma
// kernel (WarpGroupGemm.cu) instead, which Hopper's tensor cores need to
// run at their rate. MOE_CUDA_GROUPED_GEMM=cublas trades the empty rows'
// work for cuBLAS's rate where the count limits M (GroupedGemm.h).
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
// for outer-contiguous tiles) then hands out the fragments of either.
// Tiles past a group's counted rows are skipped, and every value of a
// counted row or k index past the count is 0 instead of memory.
//
// Each C element is one thread's sum in a fixed order: deterministic, and
// different from the CPU's oneDNN in summation order only.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "RowMajorGemm.h"
#include "Support.h"
#include "TensorCoreTiles.cuh"

#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace moert::cuda;
using namespace moert::cuda::tensorcore;

namespace {

constexpr int kTile = 128; // rows and columns of a block's tile of C
constexpr int kStages = 3; // k-steps in flight
constexpr int kPad = 8;    // values after each stored row of a stage
constexpr int kWarpRows = 64, kWarpColumns = 64;
constexpr int kGemmThreads = 32 * (kTile / kWarpRows) * (kTile / kWarpColumns);

/// A stage's tile of one operand as it is stored: [kTile][kTileK] when
/// k-contiguous, else [kTileK][kTile], each row padded.
template <bool KContiguous> struct StageTile {
  static constexpr bool kKContiguous = KContiguous;
  static constexpr int kThreads = kGemmThreads;
  static constexpr int kTileK = 32, kTileOuter = kTile;
  static constexpr int kRows = KContiguous ? kTile : kTileK;
  static constexpr int kLd = (KContiguous ? kTileK : kTile) + kPad;
  static constexpr int kValues = kRows * kLd;
  static_assert(kLd % kChunk == 0, "16-byte aligned rows");
  __device__ static int offset(int row, int chunk) {
    return row * kLd + chunk * kChunk;
  }
};
constexpr int kTileK = StageTile<true>::kTileK;

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
  static_assert(kSharedBytes <= kPortableSharedBytes);
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

  using TileA = StageTile<L::kAContiguous>;
  using TileB = StageTile<L::kBContiguous>;
  GroupedGemmBlock block = blockOf(p, kTile, kTile);
  if (block.row0 >= block.mLimit)
    return; // past the group's rows: nothing to read or write

  int warp = threadIdx.x / 32;
  int warpRow = warp / (kTile / kWarpColumns) * kWarpRows;
  int warpColumn = warp % (kTile / kWarpColumns) * kWarpColumns;
  constexpr int kMTiles = kWarpRows / 16, kNTiles = kWarpColumns / 8;
  float acc[kMTiles][kNTiles][4] = {};
  int64_t steps = (block.kLimit + kTileK - 1) / kTileK;
  for (int term = 0; term < p.terms; ++term) {
    StagedOperands<TileA, TileB> operands(p, block, term, vector);
    // The first kStages - 1 steps; a group is committed for every stage,
    // empty or not, so that counting groups counts stages.
#pragma unroll
    for (int stage = 0; stage < kStages - 1; ++stage) {
      if (stage < steps)
        operands.load(stage, tileA(stage), tileB(stage));
      commitCopies();
    }
    for (int64_t step = 0; step < steps; ++step) {
      awaitCopies<kStages - 2>(); // this step's stage has landed
      __syncthreads(); // and every warp is done with the stage refilled next
      int64_t next = step + kStages - 1;
      if (next < steps) {
        int stage = static_cast<int>(next % kStages);
        operands.load(next, tileA(stage), tileB(stage));
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

  float *c = outputOf(p, block);
#pragma unroll
  for (int i = 0; i < kMTiles; ++i)
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
      storeFragment(c, p.ldc, p.n, block.mLimit, block.row0 + warpRow + 16 * i,
                    block.col0 + warpColumn + 8 * j, acc[i][j], pairedC);
}

template <bool TransA, bool TransB>
void launch(const GroupedGemm<moert::bf16> &gemm, Access access,
            const char *name) {
  auto kernel = tensorCoreGemmKernel<TransA, TransB>;
  // Once per kernel: over the default 48 KiB of shared memory.
  static const size_t bytes = allowSharedBytes(
      kernel, Layout<TransA, TransB>::kSharedBytes, "moert::cuda::groupedGemm");
  kernel<<<gridOf(gemm, kTile, kTile), kGemmThreads, bytes, stream()>>>(
      gemm, access.vector, access.pairedC);
  checkLaunch(name);
}

void launchMmaSync(const GroupedGemm<moert::bf16> &gemm, Access access,
                   const char *name) {
  withTranspositions(gemm, [&](auto transA, auto transB) {
    launch<transA, transB>(gemm, access, name);
  });
}

} // namespace

Access moert::cuda::tensorcore::accessOf(const GroupedGemm<moert::bf16> &gemm) {
  Access access{gemm.lda % kChunk == 0 && gemm.ldb % kChunk == 0 &&
                    gemm.strideA % kChunk == 0 && gemm.strideB % kChunk == 0,
                gemm.ldc % 2 == 0 && gemm.strideC % 2 == 0};
  for (int problem = 0; problem < gemm.problems; ++problem) {
    access.pairedC =
        access.pairedC && reinterpret_cast<uintptr_t>(gemm.c[problem]) % 8 == 0;
    for (int term = 0; term < gemm.terms; ++term)
      access.vector = access.vector && aligned16(gemm.a[problem][term]) &&
                      aligned16(gemm.b[problem][term]);
  }
  return access;
}

bool moert::cuda::warpGroupGemmAvailable() {
#ifdef MOERT_CUDA_SM90A
  // One GPU a process: asked once.
  static const bool available = [] {
    int device = 0, major = 0, minor = 0;
    const char *what = "moert::cuda::warpGroupGemmAvailable";
    check(cudaGetDevice(&device), what);
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                                 device),
          what);
    check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor,
                                 device),
          what);
    return major == 9 && minor == 0;
  }();
  return available;
#else
  return false;
#endif
}

namespace {
/// Fails, naming `what`, where the wgmma kernels cannot run.
void requireWarpGroupGemm(const char *what) {
  if (!moert::cuda::warpGroupGemmAvailable())
    moert::fail("{}: the wgmma grouped GEMM needs an sm_90 GPU and a build "
                "with sm_90a code (CMAKE_CUDA_ARCHITECTURES)",
                what);
}

/// The kernel of a GPU without the variable's say.
TensorCoreKernel fastestCountedKernel() {
  return warpGroupGemmAvailable() ? TensorCoreKernel::WarpGroup
                                  : TensorCoreKernel::MmaSync;
}

/// Each group's whole op(A) op(B), past the count too (its m rows, or its
/// k where the products there are zero): a strided batched cuBLAS call for
/// each problem and term, the second term added to the first.
void launchCublas(const GroupedGemm<moert::bf16> &gemm, const char *name) {
  GemmBatch batch{gemm.groups, gemm.strideA, gemm.strideB, gemm.strideC};
  for (int problem = 0; problem < gemm.problems; ++problem)
    for (int term = 0; term < gemm.terms; ++term)
      rowMajorGemm(gemm.transA, gemm.transB, gemm.m, gemm.n, gemm.k,
                   gemm.a[problem][term], gemm.lda, gemm.b[problem][term],
                   gemm.ldb, term == 0 ? 0.0f : 1.0f, gemm.c[problem], gemm.ldc,
                   name, batch);
}
} // namespace

TensorCoreKernel moert::cuda::autoTensorCoreKernel() {
  // Read at every call (host code only: a graph replays the kernels).
  const char *setting = std::getenv("MOE_CUDA_GROUPED_GEMM");
  if (setting && std::strcmp(setting, "mma.sync") == 0)
    return TensorCoreKernel::MmaSync;
  if (setting && std::strcmp(setting, "wgmma.tma") == 0) {
    requireWarpGroupGemm("MOE_CUDA_GROUPED_GEMM=wgmma.tma");
    return TensorCoreKernel::WarpGroupTma;
  }
  if (setting && std::strcmp(setting, "cublas") == 0)
    return TensorCoreKernel::Cublas;
  if (setting && *setting && std::strcmp(setting, "auto") != 0)
    moert::fail("MOE_CUDA_GROUPED_GEMM={}: expected auto, mma.sync, "
                "wgmma.tma or cublas",
                setting);
  return fastestCountedKernel();
}

bool moert::cuda::runsOnCublas(const GroupedGemm<moert::bf16> &gemm,
                               TensorCoreKernel kernel) {
  return kernel == TensorCoreKernel::Cublas &&
         (gemm.counted == CountedDim::M ||
          gemm.pastCount == PastCount::ZeroProducts);
}

void moert::cuda::groupedGemm(const GroupedGemm<moert::bf16> &gemm,
                              const char *name, TensorCoreKernel kernel) {
  if (kernel == TensorCoreKernel::WarpGroup ||
      kernel == TensorCoreKernel::WarpGroupTma)
    requireWarpGroupGemm(name);
  if (gemm.groups == 0 || gemm.m == 0 || gemm.n == 0 || gemm.problems == 0)
    return;
  if (kernel == TensorCoreKernel::Auto)
    kernel = autoTensorCoreKernel();
  if (runsOnCublas(gemm, kernel))
    return launchCublas(gemm, name);
  if (kernel == TensorCoreKernel::Cublas)
    kernel = fastestCountedKernel();
  Access access = accessOf(gemm);
  if (kernel == TensorCoreKernel::MmaSync)
    launchMmaSync(gemm, access, name);
  else if (kernel == TensorCoreKernel::WarpGroup ||
           !launchWarpGroupTmaGemm(gemm, access, name))
    launchWarpGroupGemm(gemm, access, name);
}
