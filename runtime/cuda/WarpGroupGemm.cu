//===- WarpGroupGemm.cu - the experts' grouped GEMM on Hopper -------------===//
//
// groupedGemm over bf16 operands on sm_90a: wgmma, the warp-group MMA that
// Hopper's tensor cores need to run at their rate (mma.sync, which
// TensorCoreGemm.cu runs on every GPU from sm_80, reaches about two thirds
// of H100's peak by FlashAttention-3's measurements). The contract is the
// mma.sync kernel's: counts read on the device, tiles past a group's counted
// rows skipped, values past a count read as 0, f32 accumulation, one thread's
// fixed-order sum for each C element (deterministic).
//
// The tiles, products and stores are WarpGroupMma.cuh's; here the two warp
// groups that multiply also stage the k-steps, by cp.async. Four stages
// (192 KiB, one block an SM): while step s's wgmma runs, s - 1's may still
// run and s + 1 and s + 2 load, so one barrier a step hands a stage over
// and the tensor cores do not drain at it. (WarpGroupTmaGemm.cu stages
// them by TMA from a warp group of its own instead.)
//
// The copies are the generic proxy's and wgmma reads through the async
// proxy: each thread fences its landed copies to the async proxy before
// the barrier that hands a stage to the warp groups.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "Support.h"
#include "TensorCoreTiles.cuh"
#include "WarpGroupMma.cuh"

#include <cstdint>

using namespace moert::cuda;
using namespace moert::cuda::tensorcore;
using namespace moert::cuda::tensorcore::wgmma;

namespace {

// Stages: step s is read by wgmma while s - 1's may still run (one wgmma
// group in flight) and s + 1, s + 2 load.
constexpr int kStages = 4;
#ifdef MOERT_WGMMA_DEVICE_CODE
constexpr int kLoadAhead = kStages - 2; // steps loading ahead
#endif
// The extra bytes let the kernel align the stages.
constexpr size_t kSharedBytes =
    size_t(kStages) * kStageValues * sizeof(Bits) + kAtomBytes;

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kMmaThreads, 1)
    warpGroupGemmKernel(GroupedGemm<moert::bf16> p, bool vector, bool pairedC) {
#ifdef MOERT_WGMMA_DEVICE_CODE
  extern __shared__ __align__(16) unsigned char shared[];
  StageRing<kStages> stages(shared);

  GroupedGemmBlock block = blockOf(p, kTileM, kTileN);
  if (block.row0 >= block.mLimit)
    return; // past the group's rows: nothing to read or write

  int warpGroup = threadIdx.x / 128;
  float acc[kAccumulators] = {};
  int64_t steps = (block.kLimit + kTileK - 1) / kTileK;
  for (int term = 0; term < p.terms; ++term) {
    StagedOperands<TileOfA<TransA>, TileOfB<TransB>> operands(p, block, term,
                                                              vector);
    // The first kLoadAhead steps; a group is committed for every stage,
    // empty or not, so that counting groups counts stages.
#pragma unroll
    for (int stage = 0; stage < kLoadAhead; ++stage) {
      if (stage < steps)
        operands.load(stage, stages.tileA(stage), stages.tileB(stage));
      commitCopies();
    }
    for (int64_t step = 0; step < steps; ++step) {
      awaitCopies<kLoadAhead - 1>(); // this step's stage has landed
      fenceToAsyncProxy();
      // Every warp group's wgmma of step - 2 is done (the wait below),
      // which frees its stage for a refill.
      __syncthreads();
      int stage = static_cast<int>(step % kStages);
      multiplyStage<TransA, TransB>(acc, stages.tileA(stage),
                                    stages.tileB(stage), warpGroup);
      int64_t next = step + kLoadAhead;
      if (next < steps) {
        int refill = static_cast<int>(next % kStages);
        operands.load(next, stages.tileA(refill), stages.tileB(refill));
      }
      commitCopies();
      // This step's wgmma stays in flight into the next step's.
      warpGroupWait<1>();
      fenceAccumulators(acc);
    }
    warpGroupWait<0>();
    fenceAccumulators(acc);
    awaitCopies<0>();
    __syncthreads(); // the next term refills every stage
  }
  storeAccumulators(p, block, warpGroup, acc, pairedC);
#else
  __trap(); // launched only where warpGroupGemmAvailable (sm_90a code)
#endif
}

template <bool TransA, bool TransB>
void launch(const GroupedGemm<moert::bf16> &gemm, Access access,
            const char *name) {
  auto kernel = warpGroupGemmKernel<TransA, TransB>;
  static const size_t bytes = allowWarpGroupShared(kernel, kSharedBytes);
  kernel<<<gridOf(gemm, kTileM, kTileN), kMmaThreads, bytes, stream()>>>(
      gemm, access.vector, access.pairedC);
  checkLaunch(name);
}

} // namespace

void moert::cuda::tensorcore::launchWarpGroupGemm(
    const GroupedGemm<moert::bf16> &gemm, Access access, const char *name) {
  withTranspositions(gemm, [&](auto transA, auto transB) {
    launch<transA, transB>(gemm, access, name);
  });
}
