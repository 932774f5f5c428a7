//===- TensorCoreAttention.cuh - bf16 attention on tensor cores -*- C++ -*-===//
//
// Flash attention over bf16 operands with mma.sync m16n8k16 (sm_80 and
// later): f32 accumulation, an f32 softmax, and the probabilities and the
// scores' gradients rounded to bf16 (to nearest even) right before the
// products that read them. The backward rounds the normalized
// probabilities, as moe.attention over bf16 operands specifies; the
// forward, one pass over the keys, rounds them relative to the running
// maximum and divides by the row's sum at the end (FlashAttention's
// scheme), which differs from the specified rounding by up to 2^-8 of a
// term, and the backward's delta = dOut . out (from the forward's out)
// inherits that. A second pass over the keys for exact rounding would
// double the forward's QK^T products; the kernel tests and the bf16
// train-step case hold these differences to bf16 tolerances.
// Scores are exponentiated base 2, their scale folded into one FMA with
// log2(e) (ex2.approx, relative error about 2^-22, far under bf16's
// 2^-9), and only tiles that cross the causal diagonal or the sequence's
// end test each element's visibility: on tensor cores the instructions
// around the products, not the products, bound these kernels.
// Included by WarpGroupAttention.cuh (which TransformerKernels.cu includes
// beside the f32 kernels, AttentionKernels.cuh), whose Shape, grids,
// statistics and delta kernel it shares: the same two backward kernels,
// the same loop orders. The kernels take a tile policy: this file's
// MmaSyncTiles is what the rest of this comment describes;
// WarpGroupAttention.cuh's WarpGroupTiles keeps the tiles swizzled and
// multiplies by wgmma.
//
// A block is 4 warps over 64 rows of queries (forward, dQ) or keys (dK,
// dV), 16 rows a warp, walking 64-row tiles of the other side in order:
// every output element is summed by one thread in a fixed order, with no
// atomics. Tiles sit in shared memory as bf16 bits, row-major as the
// tensors are ([row][head dim]), each row padded by 8 elements so that
// ldmatrix's 8 rows x 16 bytes fall in 32 banks; head dims are padded with
// zeros to HeadDim (32, 64 or 128). cp.async fills the tiles, a step's
// second tile landing while the first one's product runs.
//
// Fragments are those of TensorCore.cuh, all loaded by ldmatrix: A and B
// from the tile's rows when it holds A or B^T (the second factor of the
// scores and of dP, whose products run over the head dim), B by
// ldmatrix.trans when it holds B (V, dO, Q and K in the products over rows
// that read the probabilities or the scores' gradients).
// C over two adjacent n-tiles has A's layout over 16 columns, so the
// probabilities go from one product into the next without leaving
// registers (FlashAttention-2's scheme).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_TENSORCOREATTENTION_CUH
#define MOERT_CUDA_TENSORCOREATTENTION_CUH

#include "AttentionKernels.cuh"
#include "TensorCore.cuh"

#include "moert/Bf16.h"

#include <algorithm>
#include <initializer_list>

namespace moert::cuda::flash::tc {

using tensorcore::awaitCopies;
using tensorcore::Bits;
using tensorcore::commitCopies;
using tensorcore::copyAsync;
using tensorcore::kChunk;
using tensorcore::mma;
using tensorcore::packBf16;

constexpr int kRows = kTile; // queries or keys of a tile
constexpr int kWarps = 4;
constexpr int kTcThreads = kWarps * 32;
constexpr int kPad = 8;
constexpr int kMaxHeadDim = kMaxBf16AttentionHeadDim;
/// The row stride of a [rows][HeadDim] tile.
template <int HeadDim> constexpr int kLd = HeadDim + kPad;

/// The A fragment of rows [r0, r0 + 16), columns [c0, c0 + 16) of a
/// row-major tile: ldmatrix of the four 8 x 8 blocks (r0 | r0 + 8) x
/// (c0 | c0 + 8), lanes 8i..8i+7 giving the rows of block i.
__device__ inline void loadA(uint32_t (&a)[4], const Bits *tile, int ld, int r0,
                             int c0) {
  int lane = threadIdx.x % 32, block = lane / 8;
  tensorcore::loadMatrices(a, tile + (r0 + lane % 8 + 8 * (block & 1)) * ld +
                                  c0 + 8 * (block >> 1));
}

/// The B fragments of n-tiles n0 and n0 + 8 over k [k0, k0 + 16), from the
/// row-major tile bt = B^T ([n][k]): ldmatrix of the blocks (n0 | n0 + 8)
/// x (k0 | k0 + 8). Returns {b0, b1} of n0, then of n0 + 8.
__device__ inline void loadBPair(uint32_t (&b)[4], const Bits *bt, int ld,
                                 int n0, int k0) {
  int lane = threadIdx.x % 32, block = lane / 8;
  tensorcore::loadMatrices(b, bt + (n0 + lane % 8 + 8 * (block >> 1)) * ld +
                                  k0 + 8 * (block & 1));
}

/// acc (16 x N) += A B: A is rows [r0, r0 + 16) of the row-major tile a
/// (K columns), B^T the row-major tile bt ([N][K]).
template <int K, int N>
__device__ inline void product(float (&acc)[N / 8][4], const Bits *a, int lda,
                               int r0, const Bits *bt, int ldb) {
  static_assert(N % 16 == 0, "n-tiles are loaded in pairs");
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t fragment[4];
    loadA(fragment, a, lda, r0, k0);
#pragma unroll
    for (int n = 0; n < N / 8; n += 2) {
      uint32_t pair[4];
      loadBPair(pair, bt, ldb, n * 8, k0);
      mma(acc[n], fragment, pair[0], pair[1]);
      mma(acc[n + 1], fragment, pair[2], pair[3]);
    }
  }
}

/// The B fragments of n-tiles n0 and n0 + 8 over k [k0, k0 + 16), from
/// the row-major tile of B itself ([k][n]): ldmatrix.trans of the four
/// 8 x 8 blocks (k0 | k0 + 8) x (n0 | n0 + 8), lanes 8i..8i+7 giving the
/// rows of block i, hands each lane B's (k 2t..2t+1, n g) of each block.
/// Returns {b0, b1} of n0, then of n0 + 8.
__device__ inline void loadBPairOfRows(uint32_t (&b)[4], const Bits *tile,
                                       int ld, int k0, int n0) {
  int lane = threadIdx.x % 32, block = lane / 8;
  const Bits *row =
      tile + (k0 + lane % 8 + 8 * (block & 1)) * ld + n0 + 8 * (block >> 1);
  tensorcore::loadMatricesTransposed(b, row);
}

/// The A fragment, rounded to bf16, of columns [16 k, 16 k + 16) of the
/// C fragments p (16 x 64) of a product: C over two adjacent n-tiles has
/// A's layout over 16 columns.
__device__ inline void fragmentOf(uint32_t (&a)[4],
                                  const float (&p)[kRows / 8][4], int k) {
  a[0] = packBf16(p[2 * k][0], p[2 * k][1]);
  a[1] = packBf16(p[2 * k][2], p[2 * k][3]);
  a[2] = packBf16(p[2 * k + 1][0], p[2 * k + 1][1]);
  a[3] = packBf16(p[2 * k + 1][2], p[2 * k + 1][3]);
}

/// acc (16 x N) += bf16(P) B, where P (16 x 64) is the C fragments p of a
/// product and B the row-major tile b ([64][N]).
template <int N>
__device__ inline void productOfRegisters(float (&acc)[N / 8][4],
                                          const float (&p)[kRows / 8][4],
                                          const Bits *b, int ldb) {
  static_assert(N % 16 == 0, "n-tiles are loaded in pairs");
#pragma unroll
  for (int k = 0; k < kRows / 16; ++k) {
    uint32_t fragment[4];
    fragmentOf(fragment, p, k);
#pragma unroll
    for (int n = 0; n < N / 8; n += 2) {
      uint32_t pair[4];
      loadBPairOfRows(pair, b, ldb, k * 16, n * 8);
      mma(acc[n], fragment, pair[0], pair[1]);
      mma(acc[n + 1], fragment, pair[2], pair[3]);
    }
  }
}

/// The tiles and products of the kernels below on mma.sync: row-major
/// tiles padded to kLd, products by warp (warp w's rows 16w..16w+15 of A
/// and of the result). The kernels take this or WarpGroupAttention.cuh's
/// wgmma policy, whose members have the same meaning:
/// - kHeadDim, kTileValues (a tile's), kAlignmentBytes (extra bytes that
///   first() may skip);
/// - first(shared): where the block's tiles start;
/// - offset(row, d): where element (row, d) of a tile lies;
/// - landed(): called by each thread once its copies landed, before the
///   barrier that hands the tiles to the products;
/// - scores(s, a, bt): the warp's rows of s (64 x 64) += A B, A the tile
///   a ([64][head dim]), B^T the tile bt;
/// - accumulate(acc, p, b): the warp's rows of acc (64 x head dim) +=
///   bf16(P) B, P the product p (the warp's rows), B the tile b.
template <int HeadDim> struct MmaSyncTiles {
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kTileValues = kRows * kLd<HeadDim>;
  static constexpr size_t kAlignmentBytes = 0;

  __device__ static Bits *first(unsigned char *shared) {
    return reinterpret_cast<Bits *>(shared);
  }
  __device__ static int offset(int row, int d) {
    return row * kLd<HeadDim> + d;
  }
  __device__ static void landed() {}
  __device__ static void scores(float (&s)[kRows / 8][4], const Bits *a,
                                const Bits *bt) {
    product<HeadDim, kRows>(s, a, kLd<HeadDim>, threadIdx.x / 32 * 16, bt,
                            kLd<HeadDim>);
  }
  __device__ static void accumulate(float (&acc)[HeadDim / 8][4],
                                    const float (&p)[kRows / 8][4],
                                    const Bits *b) {
    productOfRegisters<HeadDim>(acc, p, b, kLd<HeadDim>);
  }
};

/// Bytes of a kernel's `tiles` tiles (and `statistics` floats after them).
template <typename Tiles>
constexpr size_t sharedBytes(int tiles, int statistics = 0) {
  return Tiles::kAlignmentBytes +
         size_t(tiles) * Tiles::kTileValues * sizeof(Bits) +
         statistics * sizeof(float);
}
// The kernels' largest need, the dK/dV kernel's at the largest head dim.
static_assert(sharedBytes<MmaSyncTiles<kMaxHeadDim>>(4, 2 * kRows) <=
              kPortableSharedBytes);

/// Rows [r0, r0 + 64) of `head` into a tile; zero past the sequence and
/// the head. With `vectors` (head_dim a multiple of 8, 16-byte aligned
/// tensors), 16-byte cp.async copies, each thread a fixed chunk of every
/// kPass-th row, which the caller commits and awaits; else values one by
/// one.
template <typename Tiles>
__device__ void loadTile(Bits *tile, const Head<Bits> &head, int64_t r0,
                         bool vectors) {
  constexpr int HeadDim = Tiles::kHeadDim;
  if (vectors) {
    constexpr int kChunksPerRow = HeadDim / kChunk;
    constexpr int kPass = kTcThreads / kChunksPerRow;
    int row = threadIdx.x / kChunksPerRow,
        d = threadIdx.x % kChunksPerRow * kChunk;
    // The rows of the thread's chunk that the sequence has (0 past the
    // head), and the step between its rows, kept out of the copies' loop.
    int rowsHere =
        d < head.headDim
            ? static_cast<int>(min(head.seq - r0 - row, int64_t(kRows)))
            : 0;
    const Bits *from = head.tensor + head.index(r0 + row, d);
    const int64_t step = int64_t(kPass) * head.stride;
#pragma unroll
    for (int pass = 0; pass < kRows / kPass; ++pass, from += step) {
      Bits *to = tile + Tiles::offset(row + pass * kPass, d);
      if (pass * kPass < rowsHere)
        copyAsync(to, from);
      else
        *reinterpret_cast<uint4 *>(to) = make_uint4(0, 0, 0, 0);
    }
    return;
  }
  for (int e = threadIdx.x; e < kRows * HeadDim; e += kTcThreads) {
    int r = e / HeadDim, d = e % HeadDim;
    tile[Tiles::offset(r, d)] = r0 + r < head.seq && d < head.headDim
                                    ? head.tensor[head.index(r0 + r, d)]
                                    : Bits(0);
  }
}

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

/// 2^x in one MUFU instruction; 0 for -inf.
__device__ inline float exp2Approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// Loads the tiles of the next step's two products, the first's (from
/// `first`) then the second's, as two groups of copies, and returns when
/// the first has landed (and every copy committed before it); awaitSecond
/// waits for the second, which lands while the first product runs.
template <typename Tiles>
__device__ void loadPair(Bits *firstTile, const Head<Bits> &first,
                         Bits *secondTile, const Head<Bits> &second, int64_t r0,
                         bool vectors) {
  loadTile<Tiles>(firstTile, first, r0, vectors);
  commitCopies();
  loadTile<Tiles>(secondTile, second, r0, vectors);
  commitCopies();
  awaitCopies<1>();
  Tiles::landed();
  __syncthreads();
}
template <typename Tiles> __device__ void awaitSecond() {
  awaitCopies<0>();
  Tiles::landed();
  __syncthreads();
}

__device__ inline float quadMax(float value) {
  value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 1));
  return fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 2));
}

/// The sum over the 4 lanes (t) that share a fragment row; butterflies
/// leave the same bits in each.
__device__ inline float quadSum(float value) {
  value += __shfl_xor_sync(0xffffffffu, value, 1);
  return value + __shfl_xor_sync(0xffffffffu, value, 2);
}

/// Row (0: g, 1: g + 8) and column of element e of a C fragment's n-tile n.
__device__ inline int fragmentRow(int e) {
  return threadIdx.x % 32 / 4 + (e >= 2 ? 8 : 0);
}
__device__ inline int fragmentColumn(int n, int e) {
  return n * 8 + 2 * (threadIdx.x % 4) + (e & 1);
}

/// Sets the warp's hidden scores of the product of the query tile from i0
/// and the key tile from k0 to -inf; the warp's 16 rows start at row0, a
/// query (RowsAreKeys false) or a key. Only tiles that cross the causal
/// diagonal, a window's edge or the sequence's end test their elements.
template <bool RowsAreKeys>
__device__ inline void maskHiddenScores(float (&s)[kRows / 8][4],
                                        const Shape &shape, int64_t i0,
                                        int64_t k0, int64_t row0) {
  int64_t window = shape.mask.window;
  bool crossed = (shape.mask.causal && k0 + kRows - 1 > i0) ||
                 (window && i0 + kRows - 1 - k0 >= window) ||
                 i0 + kRows > shape.seq || k0 + kRows > shape.seq;
  if (!crossed)
    return;
#pragma unroll
  for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      int64_t row = row0 + fragmentRow(e),
              column = (RowsAreKeys ? i0 : k0) + fragmentColumn(n, e);
      if (!visible(shape, RowsAreKeys ? column : row,
                   RowsAreKeys ? row : column))
        s[n][e] = -INFINITY;
    }
}

/// softmaxGrad of AttentionKernels.cuh, the hidden scores -inf already
/// (maskHiddenScores), the row's lse in base 2 (lse2 = lse log2(e)) and
/// scaleLog2 = scale log2(e).
__device__ inline void softmaxGradBase2(const Shape &shape, float scaleLog2,
                                        float lse2, float delta, float &s,
                                        float &dp) {
  float p = exp2Approx(fmaf(s, scaleLog2, -lse2));
  dp = p * (dp - delta) * shape.scale;
  s = p;
}

/// The forward, with each query row's lse for the backward:
/// AttentionKernels.cuh's forwardKernel on tensor cores. Shared memory: Q,
/// K, V. The output is f32, or bf16 (the f32 result rounded as it is
/// stored).
template <typename Tiles, typename Out>
__global__ void __launch_bounds__(kTcThreads)
    forwardKernel(const Bits *q, const Bits *k, const Bits *v, Shape shape,
                  bool vectors, Out *out, float *lse) {
  constexpr int HeadDim = Tiles::kHeadDim;
  extern __shared__ uint4 sharedTiles[];
  Bits *qs = Tiles::first(reinterpret_cast<unsigned char *>(sharedTiles));
  Bits *ks = qs + Tiles::kTileValues, *vs = ks + Tiles::kTileValues;
  int warp = threadIdx.x / 32;
  auto [b, h, kvHead] = QueryHeadOfBlock(shape);
  Head qHead(q, shape, b, h, shape.heads);
  Head kHead(k, shape, b, kvHead, shape.kvHeads);
  Head vHead(v, shape, b, kvHead, shape.kvHeads);
  int64_t i0 = int64_t(blockIdx.y) * kRows;
  int64_t rows[2] = {i0 + warp * 16 + fragmentRow(0),
                     i0 + warp * 16 + fragmentRow(2)};

  loadTile<Tiles>(qs, qHead, i0, vectors);
  commitCopies();

  float acc[HeadDim / 8][4] = {};
  // The running maximum of each row's scores times scaleLog2, and the sum
  // of 2^(score scaleLog2 - maximum).
  const float scaleLog2 = shape.scale * kLog2e;
  float maximum[2], sum[2];
  for (int half = 0; half < 2; ++half) {
    maximum[half] = shape.initialMaximum(h) * kLog2e;
    sum[half] = shape.initialSum();
  }
  int64_t keyEnd = keyEndOf(shape, i0);
  for (int64_t k0 = keyBeginOf(shape, i0); k0 < keyEnd; k0 += kRows) {
    __syncthreads(); // the last tile's readers are done
    loadPair<Tiles>(ks, kHead, vs, vHead, k0, vectors);
    float s[kRows / 8][4] = {};
    Tiles::scores(s, qs, ks);
    // Online softmax per row, as in the f32 kernel (a row that has seen
    // only hidden scores keeps a maximum of -inf).
    maskHiddenScores<false>(s, shape, i0, k0, i0 + warp * 16);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tileMax = -INFINITY;
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n)
        tileMax = fmaxf(tileMax, fmaxf(s[n][2 * half], s[n][2 * half + 1]));
      float newMax = fmaxf(maximum[half], quadMax(tileMax) * scaleLog2);
      float base = newMax == -INFINITY ? 0.0f : newMax;
      float correction = exp2Approx(maximum[half] - base);
      float tileSum = 0.0f;
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
        for (int e = 2 * half; e < 2 * half + 2; ++e) {
          s[n][e] = exp2Approx(fmaf(s[n][e], scaleLog2, -base));
          tileSum += s[n][e];
        }
      sum[half] = sum[half] * correction + quadSum(tileSum);
      maximum[half] = newMax;
#pragma unroll
      for (int n = 0; n < HeadDim / 8; ++n) {
        acc[n][2 * half] *= correction;
        acc[n][2 * half + 1] *= correction;
      }
    }
    awaitSecond<Tiles>();
    Tiles::accumulate(acc, s, vs);
  }

  int64_t rowBase = shape.statistics(b, h);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    int64_t i = rows[half];
    if (i >= shape.seq)
      continue;
#pragma unroll
    for (int n = 0; n < HeadDim / 8; ++n)
#pragma unroll
      for (int e = 2 * half; e < 2 * half + 2; ++e) {
        int d = fragmentColumn(n, e);
        if (d < shape.headDim)
          out[qHead.index(i, d)] = moert::storedAs<Out>(acc[n][e] / sum[half]);
      }
    if (threadIdx.x % 4 == 0)
      lse[rowBase + i] = (maximum[half] + log2f(sum[half])) * kLn2;
  }
}

/// Writes the warp's 16 rows of acc (f32) to rows [r0, ...) of an f32
/// tensor, at the places of `layout`'s head.
template <int HeadDim>
__device__ void storeRows(float *tensor, const Head<Bits> &layout, int64_t r0,
                          const float (&acc)[HeadDim / 8][4]) {
#pragma unroll
  for (int n = 0; n < HeadDim / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      int64_t row = r0 + fragmentRow(e);
      int d = fragmentColumn(n, e);
      if (row < layout.seq && d < layout.headDim)
        tensor[layout.index(row, d)] = acc[n][e];
    }
}

/// dK and dV of 64 keys of one kv head, summed over its query heads and
/// query tiles in order. Shared memory: K, V, Q, dO, and the query tile's
/// lse and delta.
template <typename Tiles>
__global__ void __launch_bounds__(kTcThreads)
    keyValueGradKernel(const Bits *q, const Bits *k, const Bits *v,
                       const Bits *dOut, Shape shape, bool vectors,
                       const float *lse, const float *delta, float *dk,
                       float *dv) {
  constexpr int HeadDim = Tiles::kHeadDim;
  constexpr int kValues = Tiles::kTileValues;
  extern __shared__ uint4 sharedTiles[];
  Bits *ks = Tiles::first(reinterpret_cast<unsigned char *>(sharedTiles));
  Bits *vs = ks + kValues, *qs = vs + kValues, *os = qs + kValues;
  float *tileLse = reinterpret_cast<float *>(os + kValues);
  float *tileDelta = tileLse + kRows;
  int warp = threadIdx.x / 32;
  int64_t b = blockIdx.x / shape.kvHeads;
  int kvHead = blockIdx.x % shape.kvHeads;
  int group = shape.group();
  int64_t k0 = int64_t(blockIdx.y) * kRows;
  Head kHead(k, shape, b, kvHead, shape.kvHeads);
  loadTile<Tiles>(ks, kHead, k0, vectors);
  loadTile<Tiles>(vs, Head(v, shape, b, kvHead, shape.kvHeads), k0, vectors);
  commitCopies();

  float dkAcc[HeadDim / 8][4] = {}, dvAcc[HeadDim / 8][4] = {};
  const float scaleLog2 = shape.scale * kLog2e;
  int64_t firstQuery = queryBeginOf(shape, k0),
          queryEnd = queryEndOf(shape, k0);
  for (int h = kvHead * group; h < (kvHead + 1) * group; ++h) {
    Head qHead(q, shape, b, h, shape.heads);
    Head oHead(dOut, shape, b, h, shape.heads);
    int64_t rowBase = shape.statistics(b, h);
    for (int64_t i0 = firstQuery; i0 < queryEnd; i0 += kRows) {
      __syncthreads(); // the last tile's readers are done
      for (int r = threadIdx.x; r < kRows; r += kTcThreads) {
        bool valid = i0 + r < shape.seq;
        tileLse[r] = valid ? lse[rowBase + i0 + r] * kLog2e : 0.0f;
        tileDelta[r] = valid ? delta[rowBase + i0 + r] : 0.0f;
      }
      loadPair<Tiles>(qs, qHead, os, oHead, i0, vectors);
      float s[kRows / 8][4] = {}, dp[kRows / 8][4] = {}; // [key][query]
      Tiles::scores(s, ks, qs);                          // k_j . q_i
      awaitSecond<Tiles>();
      Tiles::scores(dp, vs, os); // v_j . dO_i
      maskHiddenScores<true>(s, shape, i0, k0, k0 + warp * 16);
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int c = fragmentColumn(n, e);
          softmaxGradBase2(shape, scaleLog2, tileLse[c], tileDelta[c], s[n][e],
                           dp[n][e]);
        }
      Tiles::accumulate(dvAcc, s, os);  // dv_j += p_ij dO_i
      Tiles::accumulate(dkAcc, dp, qs); // dk_j += dS_ij q_i
    }
  }
  storeRows<HeadDim>(dk, kHead, k0 + warp * 16, dkAcc);
  storeRows<HeadDim>(dv, kHead, k0 + warp * 16, dvAcc);
}

/// dQ of 64 queries of one head, summed over key tiles in order. Shared
/// memory: Q, dO, K, V.
template <typename Tiles>
__global__ void __launch_bounds__(kTcThreads)
    queryGradKernel(const Bits *q, const Bits *k, const Bits *v,
                    const Bits *dOut, Shape shape, bool vectors,
                    const float *lse, const float *delta, float *dq) {
  constexpr int HeadDim = Tiles::kHeadDim;
  constexpr int kValues = Tiles::kTileValues;
  extern __shared__ uint4 sharedTiles[];
  Bits *qs = Tiles::first(reinterpret_cast<unsigned char *>(sharedTiles));
  Bits *os = qs + kValues, *ks = os + kValues, *vs = ks + kValues;
  int warp = threadIdx.x / 32;
  auto [b, h, kvHead] = QueryHeadOfBlock(shape);
  Head kHead(k, shape, b, kvHead, shape.kvHeads);
  Head vHead(v, shape, b, kvHead, shape.kvHeads);
  int64_t i0 = int64_t(blockIdx.y) * kRows;
  Head qHead(q, shape, b, h, shape.heads);
  loadTile<Tiles>(qs, qHead, i0, vectors);
  loadTile<Tiles>(os, Head(dOut, shape, b, h, shape.heads), i0, vectors);
  commitCopies();

  int64_t rowBase = shape.statistics(b, h);
  int64_t rows[2] = {i0 + warp * 16 + fragmentRow(0),
                     i0 + warp * 16 + fragmentRow(2)};
  const float scaleLog2 = shape.scale * kLog2e;
  float rowLse2[2], rowDelta[2]; // lse in base 2
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    bool valid = rows[half] < shape.seq;
    rowLse2[half] = valid ? lse[rowBase + rows[half]] * kLog2e : 0.0f;
    rowDelta[half] = valid ? delta[rowBase + rows[half]] : 0.0f;
  }
  float dqAcc[HeadDim / 8][4] = {};
  int64_t keyEnd = keyEndOf(shape, i0);
  for (int64_t k0 = keyBeginOf(shape, i0); k0 < keyEnd; k0 += kRows) {
    __syncthreads(); // the last tile's readers are done
    loadPair<Tiles>(ks, kHead, vs, vHead, k0, vectors);
    float s[kRows / 8][4] = {}, dp[kRows / 8][4] = {}; // [query][key]
    Tiles::scores(s, qs, ks);                          // q_i . k_j
    awaitSecond<Tiles>();
    Tiles::scores(dp, os, vs); // dO_i . v_j
    maskHiddenScores<false>(s, shape, i0, k0, i0 + warp * 16);
#pragma unroll
    for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        softmaxGradBase2(shape, scaleLog2, rowLse2[e / 2], rowDelta[e / 2],
                         s[n][e], dp[n][e]);
    Tiles::accumulate(dqAcc, dp, ks); // dq_i += dS_ij k_j
  }
  storeRows<HeadDim>(dq, qHead, i0 + warp * 16, dqAcc);
}

/// Whether tiles load 8 elements at a time: whole 16-byte vectors per row.
inline bool vectorLoads(const Shape &shape,
                        std::initializer_list<const void *> tensors) {
  return shape.headDim % 8 == 0 &&
         std::all_of(tensors.begin(), tensors.end(), aligned16);
}

// Each launcher sets its kernels' limits once, on the first (eager) call,
// before any graph capture.
template <typename Tiles, typename Out>
void forwardWith(const Bits *q, const Bits *k, const Bits *v,
                 const Shape &shape, Out *out, float *lse) {
  const char *what = "moert::cuda::attention (bf16)";
  static const size_t bytes =
      allowSharedBytes(forwardKernel<Tiles, Out>, sharedBytes<Tiles>(3), what);
  forwardKernel<Tiles, Out>
      <<<tileGrid(shape.batch * shape.heads, shape), kTcThreads, bytes,
         stream()>>>(q, k, v, shape, vectorLoads(shape, {q, k, v}), out, lse);
  checkLaunch(what);
}

template <typename Tiles>
void backwardWith(const Bits *q, const Bits *k, const Bits *v, const Bits *dOut,
                  const Shape &shape, const float *lse, const float *delta,
                  float *dq, float *dk, float *dv) {
  const char *what = "moert::cuda::attentionGrad (bf16)";
  static const size_t keyBytes = allowSharedBytes(
      keyValueGradKernel<Tiles>, sharedBytes<Tiles>(4, 2 * kRows), what);
  static const size_t queryBytes =
      allowSharedBytes(queryGradKernel<Tiles>, sharedBytes<Tiles>(4), what);
  bool vectors = vectorLoads(shape, {q, k, v, dOut});
  keyValueGradKernel<Tiles>
      <<<tileGrid(shape.batch * shape.kvHeads, shape), kTcThreads, keyBytes,
         stream()>>>(q, k, v, dOut, shape, vectors, lse, delta, dk, dv);
  checkLaunch("moert::cuda::attentionGrad (bf16 dK, dV)");
  queryGradKernel<Tiles>
      <<<tileGrid(shape.batch * shape.heads, shape), kTcThreads, queryBytes,
         stream()>>>(q, k, v, dOut, shape, vectors, lse, delta, dq);
  checkLaunch("moert::cuda::attentionGrad (bf16 dQ)");
}

/// The head dims the kernels are built for: 32, 64 or 128.
inline int paddedHeadDim(const Shape &shape) {
  if (shape.headDim > kMaxHeadDim)
    moert::fail("moe.attention: bf16 head_dim {} is over the CUDA tensor-core "
                "kernels' {}",
                shape.headDim, kMaxHeadDim);
  return shape.headDim <= 32 ? 32 : shape.headDim <= 64 ? 64 : 128;
}

inline const Bits *bitsOf(const bf16 *tensor) {
  return reinterpret_cast<const Bits *>(tensor);
}

} // namespace moert::cuda::flash::tc

#endif // MOERT_CUDA_TENSORCOREATTENTION_CUH
