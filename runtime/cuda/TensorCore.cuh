//===- TensorCore.cuh - bf16 mma.sync, ldmatrix and cp.async ----*- C++ -*-===//
//
// The instructions that the bf16 attention (TensorCoreAttention.cuh) and
// the experts' bf16 grouped GEMMs (TensorCoreTiles.cuh) build on: mma.sync
// m16n8k16 with f32 accumulation (sm_80 and later), ldmatrix, which loads its
// fragments from shared memory, and cp.async, which fills shared memory without
// the registers.
//
// Fragments of mma.m16n8k16.row.col (PTX ISA), for lane = 4 g + t:
// - A (16 x 16, row-major): (g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..),
//   (g+8, 2t+8..);
// - B (16 x 8): (k 2t..2t+1, n g), (k 2t+8.., n g);
// - C (16 x 8, f32): (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).
// ldmatrix .x4 loads four 8 x 8 blocks of 16-bit values, lanes 8i..8i+7
// giving the addresses of block i's rows (16 bytes each, 16-byte
// aligned): each lane gets (row g, columns 2t..2t+1) of each block, or,
// with .trans, (rows 2t..2t+1, column g).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_TENSORCORE_CUH
#define MOERT_CUDA_TENSORCORE_CUH

#include <cstdint>

namespace moert::cuda::tensorcore {

using Bits = uint16_t; // a bf16 value's bits

/// lo and hi rounded to bf16 (to nearest even), lo in the low half.
__device__ inline uint32_t packBf16(float lo, float hi) {
  uint32_t packed;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(hi), "f"(lo));
  return packed;
}

/// c += a b over one 16 x 8 x 16 tile.
__device__ inline void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                           uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// ldmatrix .x4, this lane giving the shared-memory address `row`.
__device__ inline void loadMatrices(uint32_t (&blocks)[4], const Bits *row) {
  uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, "
               "[%4];"
               : "=r"(blocks[0]), "=r"(blocks[1]), "=r"(blocks[2]),
                 "=r"(blocks[3])
               : "r"(address));
}

/// ldmatrix .x4 .trans: each block arrives transposed.
__device__ inline void loadMatricesTransposed(uint32_t (&blocks)[4],
                                              const Bits *row) {
  uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
      : "=r"(blocks[0]), "=r"(blocks[1]), "=r"(blocks[2]), "=r"(blocks[3])
      : "r"(address));
}

constexpr int kChunk = 8; // values a 16-byte copy moves

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

} // namespace moert::cuda::tensorcore

#endif // MOERT_CUDA_TENSORCORE_CUH
