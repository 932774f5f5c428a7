//===- PairedBf16GemmTiles.cpp - paired GEMMs on AMX tiles ----------------===//
//
// AMX's TDPBF16PS multiplies a tile of 16 rows x 16 pairs of bf16 by one of
// 16 pairs x 16 columns into 16 x 16 f32 sums: the pairs layout of
// PairedBf16Gemm.h is the tiles' own (A rows of pairs, B rows of column
// pairs), so the operands load as they lie. Each 16-row block of C runs as
// up to four 16-column tiles sharing one A tile per 16 pairs; the pairs
// past a multiple of 16 take a second A/B tile pair configured for them.
// Rows and columns past multiples of 16 go to the AVX-512 kernel.
//
//===----------------------------------------------------------------------===//

#include "PairedBf16Gemm.h"
#include "Vectorize.h"

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <type_traits>
#include <utility>

using moert::bf16;
using moert::cpu::detail::PairedGemm;

// AMX needs Linux's permission (hasAmxBf16); elsewhere there is none.
#if defined(__x86_64__) && defined(__linux__)

#define MOERT_TILE_OP __attribute__((always_inline)) inline

namespace {

/// LDTILECFG's 64-byte operand, palette 1.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t bytesPerRow[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

constexpr int64_t kEdge = 16;      // rows, f32 columns and pairs of a tile
constexpr uint16_t kRowBytes = 64; // 16 f32 or 16 pairs of bf16
// Tiles 0-3 hold C, 4 and 5 A and B over whole blocks of 16 pairs, 6 and 7
// A and B over the pairs left.
constexpr int kA = 4, kB = 5, kARest = 6, kBRest = 7;

TileConfig tileConfig(int64_t restPairs) {
  TileConfig config;
  for (int tile = 0; tile < kARest; ++tile) {
    config.rows[tile] = kEdge;
    config.bytesPerRow[tile] = kRowBytes;
  }
  if (restPairs > 0) {
    config.rows[kARest] = kEdge;
    config.bytesPerRow[kARest] = static_cast<uint16_t>(4 * restPairs);
    config.rows[kBRest] = static_cast<uint8_t>(restPairs);
    config.bytesPerRow[kBRest] = kRowBytes;
  }
  return config;
}

// The tile instructions as GCC's intrinsics emit them, but taking the tile
// from a template argument (GCC's macros paste their argument's spelling
// into the instruction, so they take only a literal number).
template <int Tile> MOERT_TILE_OP void zeroTile() {
  asm volatile("tilezero %%tmm%c0" ::"i"(Tile));
}
template <int Tile>
MOERT_TILE_OP void loadTile(const void *base, int64_t stride) {
  asm volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(base), "r"(stride),
               "i"(Tile)
               : "memory");
}
template <int Tile> MOERT_TILE_OP void storeTile(void *base, int64_t stride) {
  asm volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(base), "r"(stride),
               "i"(Tile)
               : "memory");
}
/// C += A B over pairs.
template <int C, int A, int B> MOERT_TILE_OP void multiplyTiles() {
  asm volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A),
               "i"(B));
}

template <typename F, int... Tiles>
MOERT_TILE_OP void forEachTile(F f, std::integer_sequence<int, Tiles...>) {
  (f(std::integral_constant<int, Tiles>()), ...);
}
/// Calls f(integral_constant<int, t>()) for the tiles t < T.
template <int T, typename F> MOERT_TILE_OP void forTiles(F f) {
  forEachTile(f, std::make_integer_sequence<int, T>());
}

/// C rows [i, i + 16), columns [j, j + 16 T) as T tiles, each summed over
/// the pairs in blocks of 16 and then the rest.
template <int T>
MOERT_TILE_OP void tileBlock(const PairedGemm &g, int64_t i, int64_t j) {
  float *c = g.c + i * g.ldc + j;
  int64_t cStride = g.ldc * sizeof(float), aStride = g.lda * sizeof(bf16),
          bStride = g.ldb * sizeof(bf16);
  forTiles<T>([&](auto tile) MOERT_LAMBDA_INLINE {
    if (g.accumulate)
      loadTile<decltype(tile)::value>(c + kEdge * tile, cStride);
    else
      zeroTile<decltype(tile)::value>();
  });
  const bf16 *a = g.a + i * g.lda;
  int64_t p = 0;
  for (; p + kEdge <= g.pairs; p += kEdge) {
    loadTile<kA>(a + 2 * p, aStride);
    const bf16 *b = g.b + p * g.ldb + 2 * j;
    forTiles<T>([&](auto tile) MOERT_LAMBDA_INLINE {
      loadTile<kB>(b + 2 * kEdge * tile, bStride);
      multiplyTiles<decltype(tile)::value, kA, kB>();
    });
  }
  if (p < g.pairs) {
    loadTile<kARest>(a + 2 * p, aStride);
    const bf16 *b = g.b + p * g.ldb + 2 * j;
    forTiles<T>([&](auto tile) MOERT_LAMBDA_INLINE {
      loadTile<kBRest>(b + 2 * kEdge * tile, bStride);
      multiplyTiles<decltype(tile)::value, kARest, kBRest>();
    });
  }
  forTiles<T>([&](auto tile) MOERT_LAMBDA_INLINE {
    storeTile<decltype(tile)::value>(c + kEdge * tile, cStride);
  });
}

void pairedGemmAmx(const PairedGemm &g, int64_t rows, int64_t cols) {
  TileConfig config = tileConfig(g.pairs % kEdge);
  asm volatile("ldtilecfg %0" ::"m"(config));
  for (int64_t i = 0; i < rows; i += kEdge) {
    int64_t j = 0;
    for (; j + 4 * kEdge <= cols; j += 4 * kEdge)
      tileBlock<4>(g, i, j);
    switch ((cols - j) / kEdge) {
    case 3:
      tileBlock<3>(g, i, j);
      break;
    case 2:
      tileBlock<2>(g, i, j);
      break;
    case 1:
      tileBlock<1>(g, i, j);
      break;
    }
  }
  // Released tiles are not saved and restored on context switches.
  asm volatile("tilerelease" ::: "memory");
}

} // namespace

bool moert::cpu::detail::hasAmxBf16() {
  // CPUID leaf 7's EDX: AMX-BF16 is bit 22, AMX-TILE bit 24 (read here:
  // clang's __builtin_cpu_supports does not know them). Linux hands AMX's
  // 8 KB of tile state only to a process that asks (arch_prctl
  // ARCH_REQ_XCOMP_PERM for XTILEDATA), and refuses where it does not
  // support it; without it the first tile instruction faults.
  constexpr int kRequestPermission = 0x1023, kTileData = 18;
  static const bool available = [] {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
      return false;
    constexpr unsigned kAmxBf16 = 1u << 22, kAmxTile = 1u << 24;
    return (edx & (kAmxBf16 | kAmxTile)) == (kAmxBf16 | kAmxTile) &&
           hasAvx512Bf16() &&
           syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return available;
}

void moert::cpu::detail::pairedGemmOnTiles(const PairedGemm &g) {
  int64_t rows = g.m / kEdge * kEdge, cols = g.n / kEdge * kEdge;
  if (rows > 0 && cols > 0)
    pairedGemmAmx(g, rows, cols);
  if (cols < g.n) {
    PairedGemm right = g;
    right.m = rows;
    right.n = g.n - cols;
    right.b += 2 * cols;
    right.c += cols;
    pairedGemmOnVectors(right);
  }
  if (rows < g.m) {
    PairedGemm below = g;
    below.m = g.m - rows;
    below.a += rows * g.lda;
    below.c += rows * g.ldc;
    pairedGemmOnVectors(below);
  }
}

#else

bool moert::cpu::detail::hasAmxBf16() { return false; }

void moert::cpu::detail::pairedGemmOnTiles(const PairedGemm &) {
  __builtin_trap(); // callers check hasAmxBf16()
}

#endif
