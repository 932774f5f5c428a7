//===- WarpGroup.cuh - wgmma's operands, fences and waits -------*- C++ -*-===//
//
// What every kernel on Hopper's warp-group MMA shares: the experts' bf16
// grouped GEMM (WarpGroupMma.cuh) and the bf16 attention
// (WarpGroupAttention.cuh). wgmma reads its shared-memory operands through
// descriptors of 128-byte swizzled tiles: every stored row is 128 bytes
// (64 bf16), and the 16-byte chunk c of row r sits at chunk c ^ (r % 8),
// so that the same chunk of 8 rows falls in distinct banks; the pattern
// repeats every 8 rows (1024 bytes, where tiles start). A k-contiguous
// operand (K-major, the PTX ISA says) is [outer][64 k] per 64 k, an
// outer-contiguous one (MN-major, bf16 only) [64 k][64 outer] per 64
// outer, the blocks a leading byte offset apart.
//
// The descriptors, fences and waits exist only where wgmma is (sm_90a,
// MOERT_WGMMA_DEVICE_CODE); the layout's helpers everywhere. Internal to
// moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_WARPGROUP_CUH
#define MOERT_CUDA_WARPGROUP_CUH

#include "TensorCore.cuh"

#include <cstdint>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MOERT_WGMMA_DEVICE_CODE 1
#endif

namespace moert::cuda::tensorcore::wgmma {

constexpr int kRowBytes = 128;            // a stored row, the swizzle's width
constexpr int kAtomBytes = 8 * kRowBytes; // the rows one swizzle pattern spans
constexpr int kRowValues = kRowBytes / sizeof(Bits);
constexpr int kMmaK = 16; // k of one wgmma

/// Where the 16-byte chunk `chunk` of row `row` of a swizzled tile of
/// `rows` rows a block lies: block chunk / 8 (64 values each), then the
/// row, then the chunk's swizzled place.
__device__ inline int swizzledOffset(int rows, int row, int chunk) {
  int block = chunk / (kRowBytes / 16), within = chunk % (kRowBytes / 16);
  return (block * rows + row) * kRowValues + (within ^ row % 8) * kChunk;
}

/// The first kAtomBytes-aligned byte of `shared` (a block's dynamic shared
/// memory, which must have kAtomBytes to spare), where swizzled tiles start.
__device__ inline unsigned char *alignedToAtoms(unsigned char *shared) {
  uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  return shared + (kAtomBytes - base % kAtomBytes) % kAtomBytes;
}

#ifdef MOERT_WGMMA_DEVICE_CODE
/// wgmma's descriptor of the 128-byte swizzled operand that starts at
/// `start`: leading byte offset `leading` (between outer blocks of 64 in
/// an outer-contiguous tile; k-contiguous ones take no leading offset, 16
/// by the PTX ISA's convention), stride byte offset kAtomBytes (between
/// groups of 8 rows of 128 bytes).
__device__ inline uint64_t descriptorOf(const Bits *start, uint32_t leading) {
  uint64_t address = static_cast<uint32_t>(__cvta_generic_to_shared(start));
  constexpr uint64_t kSwizzle128 = 1;
  return (address & 0x3FFFF) >> 4 | uint64_t(leading >> 4) << 16 |
         uint64_t(kAtomBytes >> 4) << 32 | kSwizzle128 << 62;
}

/// Orders this thread's register writes (accumulators, A fragments)
/// before the wgmma that follow.
__device__ inline void fenceOperands() {
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}
__device__ inline void commitGroup() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
/// Waits until at most `Pending` committed wgmma groups are in flight.
template <int Pending> __device__ inline void warpGroupWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(Pending) : "memory");
}
/// Keeps the compiler from moving accesses of the accumulators across the
/// asynchronous wgmma (it sees only the asm statements' operands).
template <int N> __device__ inline void fenceAccumulators(float (&d)[N]) {
#pragma unroll
  for (float &value : d)
    asm volatile("" : "+f"(value)::"memory");
}
/// Makes this thread's shared-memory writes visible to wgmma's reads.
__device__ inline void fenceToAsyncProxy() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
#endif

} // namespace moert::cuda::tensorcore::wgmma

#endif // MOERT_CUDA_WARPGROUP_CUH
