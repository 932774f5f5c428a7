//===- WarpGroupMma.cuh - wgmma over 128-byte swizzled stages --*- C++ -*-===//
//
// What the two Hopper kernels of the bf16 grouped GEMM share: the one whose
// warps stage the operands by cp.async (WarpGroupGemm.cu) and the one whose
// producer warp has the Tensor Memory Accelerator stage them
// (WarpGroupTmaGemm.cu). Both compute a block's 128 x 256 tile of C with
// two warp groups, each a 64 x 256 accumulator (128 registers a thread)
// fed by m64n256k16 wgmma straight from shared memory: the widest tile that
// two warp groups hold, since Hopper's tensor cores outrun the L2
// bandwidth that narrower tiles need (a 128 x 256 tile does 85 FLOP for
// each byte it loads, 128 x 128 64).
//
// A stage holds a k-step of 64 of both operands in WarpGroup.cuh's
// 128-byte swizzled layout (which TMA's 128-byte swizzle also writes): a
// k-contiguous tile is [outer][64 k], an outer-contiguous one [blocks of
// 64 outer][64 k][64 outer]. Both majors are wgmma's own (its transpose
// flags, bf16 only), so the four transpositions share the code. Where
// wgmma is not (MOERT_WGMMA_DEVICE_CODE), the kernels trap. Internal to
// moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_WARPGROUPMMA_CUH
#define MOERT_CUDA_WARPGROUPMMA_CUH

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "Support.h"
#include "TensorCoreTiles.cuh"
#include "WarpGroup.cuh"

#include <cstdint>

namespace moert::cuda::tensorcore::wgmma {

constexpr int kTileM = 128, kTileN = 256; // a block's tile of C
constexpr int kWarpGroups = 2;            // those that multiply
constexpr int kMmaThreads = 128 * kWarpGroups;
constexpr int kTileK = kRowValues; // k of a stage: a k-contiguous row
constexpr int kStageValues = (kTileM + kTileN) * kTileK; // A's, then B's
constexpr int kGroupRows = kTileM / kWarpGroups; // a warp group's rows of C
constexpr int kAccumulators = kGroupRows * kTileN / 128; // a thread's

/// Lets `kernel` have `bytes` of shared memory a block, over the default
/// 48 KiB, with as much of the SM's L1 as shared memory as the carveout
/// allows; returns the bytes.
template <typename Kernel>
size_t allowWarpGroupShared(Kernel kernel, size_t bytes) {
  const char *what = "moert::cuda::groupedGemm";
  size_t allowed = allowSharedBytes(kernel, bytes, what);
  check(cudaFuncSetAttribute(kernel,
                             cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared),
        what);
  return allowed;
}

/// A stage's tile of one operand, `Outer` rows of op(A) or columns of
/// op(B), in the 128-byte swizzled layout; the kMmaThreads threads that
/// multiply share its copies (TensorCoreTiles.cuh's StageLoader).
template <bool KContiguous, int Outer> struct SwizzledTile {
  static constexpr bool kKContiguous = KContiguous;
  static constexpr int kThreads = kMmaThreads;
  static constexpr int kTileK = wgmma::kTileK, kTileOuter = Outer;
  /// Rows of the tile or of one of its outer blocks.
  static constexpr int kRows = KContiguous ? kTileOuter : kTileK;
  __device__ static int offset(int row, int chunk) {
    return swizzledOffset(kRows, row, chunk);
  }
};
/// The tiles of op(A) (kTileM rows) and op(B) (kTileN columns).
template <bool TransA> using TileOfA = SwizzledTile<!TransA, kTileM>;
template <bool TransB> using TileOfB = SwizzledTile<TransB, kTileN>;

#ifdef MOERT_WGMMA_DEVICE_CODE
/// The descriptor of a k-step's slice kk (kMmaK wide) of a stage tile,
/// from its outer index outer0 (a multiple of 64).
template <typename Tile>
__device__ inline uint64_t sliceDescriptor(const Bits *tile, int outer0,
                                           int kk) {
  if constexpr (Tile::kKContiguous)
    // Rows outer0.., k within the 128-byte rows (the swizzle applies to
    // the address, so a start inside the row stays in its pattern).
    return descriptorOf(tile + outer0 * kRowValues + kk * kMmaK, 16);
  else
    // Block outer0 / 64, k rows kk * 16..; blocks kRows rows apart.
    return descriptorOf(tile + outer0 / 64 * Tile::kRows * kRowValues +
                            kk * kMmaK * kRowValues,
                        Tile::kRows * kRowBytes);
}

/// d += a b over 64 x 256 x 16, A and B from shared memory; TransposedA:
/// A is stored m-contiguous, TransposedB: B is stored n-contiguous.
template <bool TransposedA, bool TransposedB>
__device__ inline void warpGroupMma(float (&d)[kAccumulators], uint64_t a,
                                    uint64_t b) {
  asm volatile(
      "{\n"
      ".reg .pred accumulate;\n"
      "setp.ne.b32 accumulate, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, "
      "%72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, "
      "%88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, "
      "%104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, "
      "%120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, accumulate, 1, 1, %130, %131;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
        "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]),
        "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),
        "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]),
        "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
        "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]),
        "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]),
        "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]),
        "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]),
        "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]),
        "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]),
        "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]),
        "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]),
        "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]),
        "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]),
        "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]),
        "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]),
        "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]),
        "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]),
        "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]),
        "+f"(d[126]), "+f"(d[127])
      : "l"(a), "l"(b), "n"(int(TransposedA)), "n"(int(TransposedB)));
}

/// A ring of `Stages` stages in the block's dynamic shared memory (which
/// must have kAtomBytes to spare), each op(A)'s tile then op(B)'s, the
/// first aligned to the swizzle pattern's period, whose addresses wgmma's
/// descriptors read; end() is where the ring ends.
template <int Stages> struct StageRing {
  Bits *first;
  __device__ explicit StageRing(unsigned char *shared)
      : first(reinterpret_cast<Bits *>(alignedToAtoms(shared))) {}
  __device__ Bits *tileA(int stage) const {
    return first + stage * kStageValues;
  }
  __device__ Bits *tileB(int stage) const {
    return tileA(stage) + kTileM * kTileK;
  }
  __device__ Bits *end() const { return first + Stages * kStageValues; }
};

/// Starts warp group `warpGroup`'s product of a stage (its kGroupRows rows
/// of C) as one committed wgmma group; warpGroupWait ends it.
template <bool TransA, bool TransB>
__device__ inline void multiplyStage(float (&acc)[kAccumulators],
                                     const Bits *tileA, const Bits *tileB,
                                     int warpGroup) {
  fenceAccumulators(acc);
  fenceOperands();
#pragma unroll
  for (int kk = 0; kk < kTileK / kMmaK; ++kk)
    warpGroupMma<TransA, !TransB>(
        acc,
        sliceDescriptor<TileOfA<TransA>>(tileA, warpGroup * kGroupRows, kk),
        sliceDescriptor<TileOfB<TransB>>(tileB, 0, kk));
  commitGroup();
}

/// Stores warp group `warpGroup`'s accumulator (a warp's 16 rows are a
/// 16 x 8 fragment for each 8 columns, wgmma's D layout) to the block's C.
__device__ inline void storeAccumulators(const GroupedGemm<moert::bf16> &p,
                                         const GroupedGemmBlock &block,
                                         int warpGroup,
                                         const float (&acc)[kAccumulators],
                                         bool pairedC) {
  float *c = outputOf(p, block);
  int64_t row =
      block.row0 + warpGroup * kGroupRows + threadIdx.x % 128 / 32 * 16;
#pragma unroll
  for (int j = 0; j < kTileN / 8; ++j)
    storeFragment(c, p.ldc, p.n, block.mLimit, row, block.col0 + 8 * j,
                  acc + 4 * j, pairedC);
}
#endif

} // namespace moert::cuda::tensorcore::wgmma

#endif // MOERT_CUDA_WARPGROUPMMA_CUH
