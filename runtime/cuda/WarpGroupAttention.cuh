//===- WarpGroupAttention.cuh - bf16 attention on wgmma ---------*- C++ -*-===//
//
// The products of TensorCoreAttention.cuh's kernels on Hopper's warp-group
// MMA (sm_90a), and the choice between them and mma.sync. A block's 4
// warps are one warp group, and wgmma's result layout gives warp w rows
// 16w..16w+15 in mma.sync's C fragments, so the kernels, their softmax and
// their stores are the same; only the tiles' layout and the products
// change:
// - Tiles are WarpGroup.cuh's 128-byte swizzled ones, [head dim / 64][64
//   rows][64], which serve both ways: as a k-contiguous operand where the
//   product runs over the head dim (the scores, dP) and as an
//   outer-contiguous B where it runs over the rows (P V, dS K, ...).
// - scores: m64n64k16 from shared memory, A and B^T k-contiguous;
//   accumulate: m64nHk16 (H the head dim) with A, the probabilities or
//   the scores' gradients, from registers (the fragments mma.sync takes).
// Each product is one committed group of wgmma, waited for before its
// result is read; the cp.async copies are fenced to the async proxy
// before the barrier that hands the tiles over. Head dims of 32 stay on
// mma.sync (a 128-byte row is 64 values). MOE_CUDA_ATTENTION picks the
// kernels (attentionOnWarpGroups below): mma.sync, until wgmma has run on a
// GPU.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_WARPGROUPATTENTION_CUH
#define MOERT_CUDA_WARPGROUPATTENTION_CUH

#include "GroupedGemm.h"
#include "TensorCoreAttention.cuh"
#include "WarpGroup.cuh"

#include <cstdlib>
#include <cstring>

namespace moert::cuda::flash::tc {

#ifdef MOERT_WGMMA_DEVICE_CODE
// The accumulators of an m64nN wgmma, N / 8 n-tiles of 4 floats a thread,
// as asm operands (MOERT_D32, MOERT_D64) and as the instruction names them
// (MOERT_NAMES32, MOERT_NAMES64: %0..).
#define MOERT_D4(d, j)                                                         \
  "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define MOERT_D32(d)                                                           \
  MOERT_D4(d, 0), MOERT_D4(d, 1), MOERT_D4(d, 2), MOERT_D4(d, 3),              \
      MOERT_D4(d, 4), MOERT_D4(d, 5), MOERT_D4(d, 6), MOERT_D4(d, 7)
#define MOERT_D64(d)                                                           \
  MOERT_D32(d), MOERT_D4(d, 8), MOERT_D4(d, 9), MOERT_D4(d, 10),               \
      MOERT_D4(d, 11), MOERT_D4(d, 12), MOERT_D4(d, 13), MOERT_D4(d, 14),      \
      MOERT_D4(d, 15)
#define MOERT_NAMES32                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31}"
#define MOERT_NAMES64                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "     \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, "     \
  "%58, %59, %60, %61, %62, %63}"
// Accumulates (scale-d true), A and B unscaled.
#define MOERT_WGMMA(shape)                                                     \
  "{\n.reg .pred accumulate;\nsetp.ne.b32 accumulate, 1, 0;\n"                 \
  "wgmma.mma_async.sync.aligned." shape ".f32.bf16.bf16 "

/// d (64 x 64) += A B over k 16: a, b descriptors of k-contiguous tiles.
__device__ inline void scoresMma(float (&d)[kRows / 8][4], uint64_t a,
                                 uint64_t b) {
  asm volatile(MOERT_WGMMA("m64n64k16") MOERT_NAMES32
               ", %32, %33, accumulate, 1, 1, 0, 0;\n}\n"
               : MOERT_D32(d)
               : "l"(a), "l"(b));
}

/// d (64 x N) += A B over k 16: A this thread's fragment a (mma.sync's),
/// b the descriptor of an outer-contiguous tile (transposed B).
template <int N>
__device__ inline void accumulateMma(float (&d)[N / 8][4],
                                     const uint32_t (&a)[4], uint64_t b);
template <>
__device__ inline void accumulateMma<64>(float (&d)[8][4],
                                         const uint32_t (&a)[4], uint64_t b) {
  asm volatile(MOERT_WGMMA("m64n64k16") MOERT_NAMES32
               ", {%32, %33, %34, %35}, %36, accumulate, 1, 1, 1;\n}\n"
               : MOERT_D32(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
template <>
__device__ inline void accumulateMma<128>(float (&d)[16][4],
                                          const uint32_t (&a)[4], uint64_t b) {
  asm volatile(MOERT_WGMMA("m64n128k16") MOERT_NAMES64
               ", {%64, %65, %66, %67}, %68, accumulate, 1, 1, 1;\n}\n"
               : MOERT_D64(d)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
#undef MOERT_WGMMA
#undef MOERT_NAMES64
#undef MOERT_NAMES32
#undef MOERT_D64
#undef MOERT_D32
#undef MOERT_D4

/// Ends a product: its group done, its results read only after.
template <int N> __device__ inline void awaitProduct(float (&d)[N][4]) {
  using namespace tensorcore::wgmma;
  commitGroup();
  warpGroupWait<0>();
  fenceAccumulators(reinterpret_cast<float(&)[4 * N]>(d));
}
#endif

/// MmaSyncTiles' counterpart on wgmma (sm_90a code; elsewhere it traps).
template <int HeadDim> struct WarpGroupTiles {
  static_assert(HeadDim % 64 == 0, "whole 128-byte rows");
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileValues = kRows * HeadDim;
  static constexpr size_t kAlignmentBytes = tensorcore::wgmma::kAtomBytes;

  __device__ static Bits *first(unsigned char *shared) {
    return reinterpret_cast<Bits *>(tensorcore::wgmma::alignedToAtoms(shared));
  }
  __device__ static int offset(int row, int d) {
    return tensorcore::wgmma::swizzledOffset(kRows, row, d / kChunk) +
           d % kChunk;
  }
  __device__ static void landed() {
#ifdef MOERT_WGMMA_DEVICE_CODE
    tensorcore::wgmma::fenceToAsyncProxy();
#else
    __trap(); // launched only where warpGroupGemmAvailable (sm_90a code)
#endif
  }
  __device__ static void scores(float (&s)[kRows / 8][4], const Bits *a,
                                const Bits *bt) {
#ifdef MOERT_WGMMA_DEVICE_CODE
    using namespace tensorcore::wgmma;
    fenceAccumulators(reinterpret_cast<float(&)[kRows / 2]>(s));
    fenceOperands();
#pragma unroll
    for (int kk = 0; kk < HeadDim / kMmaK; ++kk) {
      // Block kk / 4 of 64 head dims, k 16 (kk % 4) within its rows.
      int start = kk / 4 * kRows * kRowValues + kk % 4 * kMmaK;
      scoresMma(s, descriptorOf(a + start, 16), descriptorOf(bt + start, 16));
    }
    awaitProduct(s);
#endif
  }
  __device__ static void accumulate(float (&acc)[HeadDim / 8][4],
                                    const float (&p)[kRows / 8][4],
                                    const Bits *b) {
#ifdef MOERT_WGMMA_DEVICE_CODE
    using namespace tensorcore::wgmma;
    fenceAccumulators(reinterpret_cast<float(&)[HeadDim / 2]>(acc));
    uint32_t fragments[kRows / kMmaK][4];
#pragma unroll
    for (int kk = 0; kk < kRows / kMmaK; ++kk) {
      fragmentOf(fragments[kk], p, kk);
      // Written before the fence below, not moved past it.
      for (uint32_t &word : fragments[kk])
        asm volatile("" : "+r"(word)::"memory");
    }
    fenceOperands();
#pragma unroll
    for (int kk = 0; kk < kRows / kMmaK; ++kk)
      // Rows 16 kk.. of every block of 64 head dims, the blocks a block of
      // kRows rows of 128 bytes apart.
      accumulateMma<HeadDim>(
          acc, fragments[kk],
          descriptorOf(b + kk * kMmaK * kRowValues, kRows * kRowBytes));
    awaitProduct(acc);
#endif
  }
};

// The dK/dV kernel's, the largest need.
static_assert(sharedBytes<WarpGroupTiles<kMaxHeadDim>>(4, 2 * kRows) <=
              kPortableSharedBytes);

/// The kernels MOE_CUDA_ATTENTION picks, read at every call (host code
/// only: a graph replays the kernels): unset or `auto`, mma.sync; `wgmma`,
/// the wgmma ones for head dims over 32, which need an sm_90 GPU and a
/// build with sm_90a code; any other value is an error.
inline bool attentionOnWarpGroups() {
  const char *setting = std::getenv("MOE_CUDA_ATTENTION");
  if (!setting || !*setting || std::strcmp(setting, "auto") == 0 ||
      std::strcmp(setting, "mma.sync") == 0)
    return false;
  if (std::strcmp(setting, "wgmma") != 0)
    moert::fail("MOE_CUDA_ATTENTION={}: expected auto, mma.sync or wgmma",
                setting);
  if (!warpGroupGemmAvailable())
    moert::fail("MOE_CUDA_ATTENTION=wgmma: the wgmma attention needs an sm_90 "
                "GPU and a build with sm_90a code (CMAKE_CUDA_ARCHITECTURES)");
  return true;
}

/// Calls launch(tiles) with the tiles of `shape`'s padded head dim (32,
/// 64 or 128) on the kernels attentionOnWarpGroups picks.
template <typename Launch> void withTiles(const Shape &shape, Launch &&launch) {
  int headDim = paddedHeadDim(shape);
  bool onWarpGroups = attentionOnWarpGroups(); // a bad value fails anyway
  if (headDim > 32 && onWarpGroups)
    return headDim == 64 ? launch(WarpGroupTiles<64>{})
                         : launch(WarpGroupTiles<128>{});
  switch (headDim) {
  case 32:
    return launch(MmaSyncTiles<32>{});
  case 64:
    return launch(MmaSyncTiles<64>{});
  default:
    return launch(MmaSyncTiles<128>{});
  }
}

} // namespace moert::cuda::flash::tc

namespace moert::cuda::flash {

template <typename Out>
void forward(const bf16 *q, const bf16 *k, const bf16 *v, const Shape &shape,
             Out *out, float *lse) {
  using namespace tc;
  withTiles(shape, [&](auto tiles) {
    forwardWith<decltype(tiles)>(bitsOf(q), bitsOf(k), bitsOf(v), shape, out,
                                 lse);
  });
}

/// lse and delta: the forward's log-sum-exp and rowDots' dOut . out.
inline void backward(const bf16 *q, const bf16 *k, const bf16 *v,
                     const bf16 *dOut, const Shape &shape, const float *lse,
                     const float *delta, float *dq, float *dk, float *dv) {
  using namespace tc;
  withTiles(shape, [&](auto tiles) {
    backwardWith<decltype(tiles)>(bitsOf(q), bitsOf(k), bitsOf(v), bitsOf(dOut),
                                  shape, lse, delta, dq, dk, dv);
  });
}

} // namespace moert::cuda::flash

#endif // MOERT_CUDA_WARPGROUPATTENTION_CUH
