//===- AttentionKernels.cuh - fused f32 attention ---------------*- C++ -*-===//
//
// Flash-style attention on CUDA cores (f32 FMA: TF32 tensor cores would not
// equal the reference to f32 rounding), included by TransformerKernels.cu.
//
// Every kernel works on 64 x 64 tiles with 256 threads: thread (ty, tx) =
// (threadIdx.x / 16, threadIdx.x % 16) owns rows ty * 4 + ii (ii < 4) and
// columns tx + 16 jj (jj < 4) of a tile. Operands are staged in shared
// memory in 64-column chunks of the head dimension:
// - "A" tiles are k-major ([k][row], stride 68), read as one float4 of a
//   thread's 4 rows;
// - "B" tiles are row-major ([n][k], stride 65), read as scalars at
//   tx + 16 jj, conflict-free for any k.
// tileDot accumulates C += A^T-chunk . B-chunk over 64 head dims; tileUpdate
// accumulates C += P^T V-chunk over the 64 rows of a tile.
//
// - forward: one block per (batch, head, 64 queries); an online softmax per
//   query row (the row's 64 keys of a tile live in one half-warp), which
//   also writes the row's log-sum-exp for the backward.
// - backward: one warp per query row writes delta = dOut . out (from the
//   forward's out: no second pass over the keys); then one block per
//   (batch, kv head, 64 keys) sums dK
//   and dV over the group's query heads and query tiles in order, and one
//   block per (batch, head, 64 queries) sums dQ over key tiles in order. Each
//   output element is written by one thread: no atomics, deterministic.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_ATTENTIONKERNELS_CUH
#define MOERT_CUDA_ATTENTIONKERNELS_CUH

#include "Support.h"

#include "moert/CudaKernels.h"
#include "moert/Error.h"

#include <cmath>
#include <cstdint>

namespace moert::cuda::flash {

constexpr int kTile = 64;           // queries, keys and head dims of a tile
constexpr int kStrideA = kTile + 4; // k-major tiles: float4-aligned rows
constexpr int kStrideB = kTile + 1; // row-major tiles: odd, no conflicts
constexpr int kBuffer = kTile * kStrideA; // floats of one tile buffer
constexpr int kAttentionThreads = 256;
constexpr int kMaxChunks = kMaxAttentionHeadDim / kTile;

struct Shape {
  int64_t batch, seq;
  int heads, kvHeads, headDim;
  moert::AttentionMask mask;
  float scale;
  /// Each head's sink logit (device memory), or null: no sinks.
  const float *sinks;

  /// An online softmax's running maximum and sum before the first key:
  /// query head h's sink logit and its exp(sink - maximum) = 1, or -inf and
  /// 0 without sinks.
  __device__ float initialMaximum(int h) const {
    return sinks ? sinks[h] : -INFINITY;
  }
  __device__ float initialSum() const { return sinks ? 1.0f : 0.0f; }
  /// The query heads that read each kv head.
  __device__ int group() const { return heads / kvHeads; }
  /// The first of query head h's softmax statistics (lse, delta), which
  /// are [batch, heads, seq].
  __device__ int64_t statistics(int64_t b, int h) const {
    return (b * heads + h) * seq;
  }
};

/// The query head that a block of a queries' grid (x: batch * heads) owns,
/// and the kv head that it reads.
struct QueryHeadOfBlock {
  int64_t b;
  int h, kvHead;

  __device__ explicit QueryHeadOfBlock(const Shape &shape)
      : b(blockIdx.x / shape.heads), h(blockIdx.x % shape.heads),
        kvHead(h / shape.group()) {}
};

inline Shape makeShape(int64_t batch, int64_t seq, int64_t heads,
                       int64_t kvHeads, int64_t headDim,
                       moert::AttentionMask mask,
                       const float *sinks = nullptr) {
  if (kvHeads <= 0 || heads % kvHeads != 0)
    moert::fail("moe.attention: {} heads do not group over {} kv heads", heads,
                kvHeads);
  if (headDim > kTile * kMaxChunks)
    moert::fail("moe.attention: head_dim {} is over the CUDA kernels' {}",
                headDim, kTile * kMaxChunks);
  return {batch,
          seq,
          static_cast<int>(heads),
          static_cast<int>(kvHeads),
          static_cast<int>(headDim),
          mask,
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(headDim))),
          sinks};
}

/// One head of a [batch, seq, numHeads, headDim] tensor of T (f32, or the
/// bits of bf16); index() also addresses tensors of the same layout (out,
/// dOut, the gradients).
template <typename T> struct Head {
  const T *tensor;
  int64_t origin, stride, seq;
  int headDim;

  __device__ Head(const T *tensor, const Shape &shape, int64_t b, int h,
                  int numHeads)
      : tensor(tensor), origin((b * shape.seq * numHeads + h) * shape.headDim),
        stride(int64_t(numHeads) * shape.headDim), seq(shape.seq),
        headDim(shape.headDim) {}

  __device__ int64_t index(int64_t row, int dim) const {
    return origin + row * stride + dim;
  }
  /// Zero past the sequence and the head: padding adds nothing to a dot.
  __device__ float at(int64_t row, int dim) const {
    return row < seq && dim < headDim ? tensor[index(row, dim)] : 0.0f;
  }
};

/// a[d][r] = head(r0 + r, d0 + d): an A tile.
__device__ inline void loadA(float *a, const Head<float> &head, int64_t r0,
                             int d0) {
  for (int e = threadIdx.x; e < kTile * kTile; e += kAttentionThreads) {
    int r = e / kTile, d = e % kTile;
    a[d * kStrideA + r] = head.at(r0 + r, d0 + d);
  }
}

/// b[r][d] = head(r0 + r, d0 + d): a B tile.
__device__ inline void loadB(float *b, const Head<float> &head, int64_t r0,
                             int d0) {
  for (int e = threadIdx.x; e < kTile * kTile; e += kAttentionThreads) {
    int r = e / kTile, d = e % kTile;
    b[r * kStrideB + d] = head.at(r0 + r, d0 + d);
  }
}

/// Stores the thread's c[ii][jj] as an A tile: a[tx + 16 jj][ty * 4 + ii].
__device__ inline void storeA(float *a, const float (&c)[4][4]) {
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int jj = 0; jj < 4; ++jj)
    *reinterpret_cast<float4 *>(a + (tx + 16 * jj) * kStrideA + ty * 4) =
        make_float4(c[0][jj], c[1][jj], c[2][jj], c[3][jj]);
}

/// acc[ii][jj] += sum over k < 64 of a[k][ty * 4 + ii] b[tx + 16 jj][k].
__device__ inline void tileDot(const float *a, const float *b,
                               float (&acc)[4][4]) {
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 8
  for (int k = 0; k < kTile; ++k) {
    float4 x = *reinterpret_cast<const float4 *>(a + k * kStrideA + ty * 4);
    float y[4];
#pragma unroll
    for (int jj = 0; jj < 4; ++jj)
      y[jj] = b[(tx + 16 * jj) * kStrideB + k];
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      acc[0][jj] += x.x * y[jj];
      acc[1][jj] += x.y * y[jj];
      acc[2][jj] += x.z * y[jj];
      acc[3][jj] += x.w * y[jj];
    }
  }
}

/// acc[ii][g] += sum over r < 64 of a[r][ty * 4 + ii] b[r][tx + 16 g].
__device__ inline void tileUpdate(const float *a, const float *b,
                                  float (&acc)[4][4]) {
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll 8
  for (int r = 0; r < kTile; ++r) {
    float4 x = *reinterpret_cast<const float4 *>(a + r * kStrideA + ty * 4);
    float y[4];
#pragma unroll
    for (int g = 0; g < 4; ++g)
      y[g] = b[r * kStrideB + tx + 16 * g];
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      acc[0][g] += x.x * y[g];
      acc[1][g] += x.y * y[g];
      acc[2][g] += x.z * y[g];
      acc[3][g] += x.w * y[g];
    }
  }
}

/// Reductions over the 16 threads (one half-warp) that share a tile row.
/// Butterflies leave the same bits in every lane.
__device__ inline float rowMax(float value) {
#pragma unroll
  for (int offset = 8; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

__device__ inline float rowSum(float value) {
#pragma unroll
  for (int offset = 8; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

__device__ inline bool visible(const Shape &shape, int64_t query, int64_t key) {
  return query < shape.seq && key < shape.seq &&
         shape.mask.sees(query, key, shape.seq);
}

/// The first key tile that the tile of queries from i0 sees: a window's
/// queries see no key tile before their first query's window.
__device__ inline int64_t keyBeginOf(const Shape &shape, int64_t i0) {
  return shape.mask.firstKey(i0) / kTile * kTile;
}

/// The end of the keys that the tile of queries from i0 sees: causal
/// queries see no key past their own tile.
__device__ inline int64_t keyEndOf(const Shape &shape, int64_t i0) {
  return shape.mask.causal && i0 + kTile < shape.seq ? i0 + kTile : shape.seq;
}

/// The first query that sees a key of the tile from k0: causal queries
/// before the tile see none of it.
__device__ inline int64_t queryBeginOf(const Shape &shape, int64_t k0) {
  return shape.mask.causal ? k0 : 0;
}

/// The end of the queries that see a key of the tile from k0: within a
/// window of W, query i sees key j only where i < j + W. (W may be any
/// positive int64_t, so it is compared before it is added.)
__device__ inline int64_t queryEndOf(const Shape &shape, int64_t k0) {
  int64_t window = shape.mask.window, lastKey = k0 + kTile - 1;
  return window && window < shape.seq - lastKey ? lastKey + window : shape.seq;
}

/// The forward: out, and each query row's lse = max + log(sum) of its
/// scaled scores, which the backward reads.
/// Shared memory: qT (A), kv (B: K then V chunks), pT (A).
template <int Chunks>
__global__ void __launch_bounds__(kAttentionThreads)
    forwardKernel(const float *q, const float *k, const float *v, Shape shape,
                  float *out, float *lse) {
  extern __shared__ float4 sharedMemory[];
  float *qT = reinterpret_cast<float *>(sharedMemory);
  float *kv = qT + kBuffer, *pT = kv + kBuffer;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  auto [b, h, kvHead] = QueryHeadOfBlock(shape);
  Head qHead(q, shape, b, h, shape.heads);
  Head kHead(k, shape, b, kvHead, shape.kvHeads);
  Head vHead(v, shape, b, kvHead, shape.kvHeads);
  int64_t i0 = int64_t(blockIdx.y) * kTile;

  float maximum[4], sum[4], acc[Chunks][4][4];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    maximum[ii] = shape.initialMaximum(h);
    sum[ii] = shape.initialSum();
#pragma unroll
    for (int c = 0; c < Chunks; ++c)
#pragma unroll
      for (int g = 0; g < 4; ++g)
        acc[c][ii][g] = 0.0f;
  }
  if (Chunks == 1) // the queries stay in shared memory
    loadA(qT, qHead, i0, 0);

  int64_t keyEnd = keyEndOf(shape, i0);
  for (int64_t k0 = keyBeginOf(shape, i0); k0 < keyEnd; k0 += kTile) {
    float s[4][4] = {};
#pragma unroll
    for (int c = 0; c < Chunks; ++c) {
      if (Chunks > 1)
        loadA(qT, qHead, i0, c * kTile);
      loadB(kv, kHead, k0, c * kTile);
      __syncthreads();
      tileDot(qT, kv, s);
      __syncthreads();
    }
    // Online softmax: rescale the running sum and output by
    // exp(old max - new max). Masked scores are -inf, so exp gives 0; a
    // row that has seen only masked scores (a window's row in a tile
    // before its window) keeps a maximum of -inf, and exp from base 0.
#pragma unroll
    for (int ii = 0; ii < 4; ++ii) {
      int64_t i = i0 + ty * 4 + ii;
      float tileMax = -INFINITY;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        int64_t j = k0 + tx + 16 * jj;
        s[ii][jj] = j < shape.seq && shape.mask.sees(i, j, shape.seq)
                        ? s[ii][jj] * shape.scale
                        : -INFINITY;
        tileMax = fmaxf(tileMax, s[ii][jj]);
      }
      float newMax = fmaxf(maximum[ii], rowMax(tileMax));
      float base = newMax == -INFINITY ? 0.0f : newMax;
      float correction = expf(maximum[ii] - base);
      float tileSum = 0.0f;
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        s[ii][jj] = expf(s[ii][jj] - base);
        tileSum += s[ii][jj];
      }
      sum[ii] = sum[ii] * correction + rowSum(tileSum);
      maximum[ii] = newMax;
#pragma unroll
      for (int c = 0; c < Chunks; ++c)
#pragma unroll
        for (int g = 0; g < 4; ++g)
          acc[c][ii][g] *= correction;
    }
    storeA(pT, s);
#pragma unroll
    for (int c = 0; c < Chunks; ++c) {
      loadB(kv, vHead, k0, c * kTile);
      __syncthreads();
      tileUpdate(pT, kv, acc[c]);
      __syncthreads();
    }
  }

  int64_t rowBase = shape.statistics(b, h);
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    int64_t i = i0 + ty * 4 + ii;
    if (i >= shape.seq)
      continue;
#pragma unroll
    for (int c = 0; c < Chunks; ++c)
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        int d = c * kTile + tx + 16 * g;
        if (d < shape.headDim)
          out[qHead.index(i, d)] = acc[c][ii][g] / sum[ii];
      }
    if (tx == 0)
      lse[rowBase + i] = maximum[ii] + logf(sum[ii]);
  }
}

/// delta = dOut . out of each query row, one warp a row, in the
/// statistics' [batch, heads, seq] order: the softmax backward's
/// sum_j p_j dp_j, as out = sum_j p_j v_j. f32 or bf16 operands.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    rowDotKernel(const T *dOut, const T *out, Shape shape, float *delta) {
  int64_t rows = shape.batch * shape.heads * shape.seq;
  for (int64_t row = warpId(); row < rows; row += warpStride()) {
    // Rows of dOut and out are [batch, seq, heads] order.
    int64_t b = row / (shape.seq * shape.heads);
    int64_t i = row / shape.heads % shape.seq;
    int h = int(row % shape.heads);
    const T *x = dOut + row * shape.headDim, *y = out + row * shape.headDim;
    float dot = 0.0f;
    for (int d = threadIdx.x % 32; d < shape.headDim; d += 32)
      dot += moert::toFloat(x[d]) * moert::toFloat(y[d]);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
      dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    if (threadIdx.x % 32 == 0)
      delta[shape.statistics(b, h) + i] = dot;
  }
}

/// Launches rowDotKernel over every query row.
template <typename T>
void rowDots(const T *dOut, const T *out, const Shape &shape, float *delta) {
  rowDotKernel<<<warpBlocks(shape.batch * shape.heads * shape.seq), kThreads, 0,
                 stream()>>>(dOut, out, shape, delta);
  checkLaunch("moert::cuda::attentionGrad (dOut . out)");
}

/// The scaled score's probability and dS = p (dp - delta) scale of one
/// (query, key) pair; 0 where masked.
__device__ inline void softmaxGrad(const Shape &shape, bool show, float lse,
                                   float delta, float &s, float &dp) {
  float p = show ? expf(s * shape.scale - lse) : 0.0f;
  dp = p * (dp - delta) * shape.scale;
  s = p;
}

/// acc[c] += A B_c for each chunk c of 64 head dims: A is `tile`, stored
/// to `a`; B_c is rows [r0, r0 + 64) and chunk c of `head`, loaded to `b`
/// (with one chunk, `b` holds it already). Every thread must have finished
/// reading `a` before the call; the last barrier frees `a` and `b` again.
template <int Chunks>
__device__ inline void accumulateChunks(const float (&tile)[4][4], float *a,
                                        float *b, const Head<float> &head,
                                        int64_t r0,
                                        float (&acc)[Chunks][4][4]) {
  storeA(a, tile);
#pragma unroll
  for (int c = 0; c < Chunks; ++c) {
    if (Chunks > 1)
      loadB(b, head, r0, c * kTile);
    __syncthreads();
    tileUpdate(a, b, acc[c]);
    __syncthreads();
  }
}

/// dK and dV of 64 keys of one kv head, summed over its query heads and
/// query tiles in order. Shared memory: kT, vT (A); q, dO (B); P, then dS
/// (A, as [query][key]). P and dS take turns in one buffer, so that the
/// five buffers (85 KiB) fit kPortableSharedBytes (six would not).
template <int Chunks>
__global__ void __launch_bounds__(kAttentionThreads)
    keyValueGradKernel(const float *q, const float *k, const float *v,
                       const float *dOut, Shape shape, const float *lse,
                       const float *delta, float *dk, float *dv) {
  extern __shared__ float4 sharedMemory[];
  float *kT = reinterpret_cast<float *>(sharedMemory);
  float *vT = kT + kBuffer, *qB = vT + kBuffer, *oB = qB + kBuffer;
  float *pdsA = oB + kBuffer;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  int64_t b = blockIdx.x / shape.kvHeads;
  int kvHead = blockIdx.x % shape.kvHeads;
  int group = shape.group();
  Head kHead(k, shape, b, kvHead, shape.kvHeads);
  Head vHead(v, shape, b, kvHead, shape.kvHeads);
  int64_t k0 = int64_t(blockIdx.y) * kTile;

  float dkAcc[Chunks][4][4] = {}, dvAcc[Chunks][4][4] = {};
  if (Chunks == 1) { // the keys and values stay in shared memory
    loadA(kT, kHead, k0, 0);
    loadA(vT, vHead, k0, 0);
  }
  for (int h = kvHead * group; h < (kvHead + 1) * group; ++h) {
    Head qHead(q, shape, b, h, shape.heads);
    Head oHead(dOut, shape, b, h, shape.heads);
    const float *rowLse = lse + shape.statistics(b, h);
    const float *rowDelta = delta + shape.statistics(b, h);
    int64_t queryEnd = queryEndOf(shape, k0);
    for (int64_t i0 = queryBeginOf(shape, k0); i0 < queryEnd; i0 += kTile) {
      float s[4][4] = {}, dp[4][4] = {}; // [key][query]
#pragma unroll
      for (int c = 0; c < Chunks; ++c) {
        if (Chunks > 1) {
          loadA(kT, kHead, k0, c * kTile);
          loadA(vT, vHead, k0, c * kTile);
        }
        loadB(qB, qHead, i0, c * kTile);
        loadB(oB, oHead, i0, c * kTile);
        __syncthreads();
        tileDot(kT, qB, s);  // k_j . q_i
        tileDot(vT, oB, dp); // v_j . dOut_i
        __syncthreads();
      }
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        int64_t i = i0 + tx + 16 * jj;
        bool valid = i < shape.seq;
        float rowL = valid ? rowLse[i] : 0.0f;
        float rowD = valid ? rowDelta[i] : 0.0f;
#pragma unroll
        for (int ii = 0; ii < 4; ++ii)
          softmaxGrad(shape, visible(shape, i, k0 + ty * 4 + ii), rowL, rowD,
                      s[ii][jj], dp[ii][jj]);
      }
      accumulateChunks(s, pdsA, oB, oHead, i0, dvAcc);  // dv_j += p_ij dOut_i
      accumulateChunks(dp, pdsA, qB, qHead, i0, dkAcc); // dk_j += dS_ij q_i
    }
  }

#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    int64_t j = k0 + ty * 4 + ii;
    if (j >= shape.seq)
      continue;
#pragma unroll
    for (int c = 0; c < Chunks; ++c)
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        int d = c * kTile + tx + 16 * g;
        if (d >= shape.headDim)
          continue;
        dk[kHead.index(j, d)] = dkAcc[c][ii][g];
        dv[kHead.index(j, d)] = dvAcc[c][ii][g];
      }
  }
}

/// dQ of 64 queries of one head, summed over key tiles in order. Shared
/// memory: qT, dOT (A); k, v (B); dS^T (A, as [key][query]).
template <int Chunks>
__global__ void __launch_bounds__(kAttentionThreads)
    queryGradKernel(const float *q, const float *k, const float *v,
                    const float *dOut, Shape shape, const float *lse,
                    const float *delta, float *dq) {
  extern __shared__ float4 sharedMemory[];
  float *qT = reinterpret_cast<float *>(sharedMemory);
  float *oT = qT + kBuffer, *kB = oT + kBuffer, *vB = kB + kBuffer;
  float *dsA = vB + kBuffer;
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  auto [b, h, kvHead] = QueryHeadOfBlock(shape);
  Head qHead(q, shape, b, h, shape.heads);
  Head oHead(dOut, shape, b, h, shape.heads);
  Head kHead(k, shape, b, kvHead, shape.kvHeads);
  Head vHead(v, shape, b, kvHead, shape.kvHeads);
  int64_t i0 = int64_t(blockIdx.y) * kTile;
  int64_t rowBase = shape.statistics(b, h);

  float rowL[4], rowD[4];
#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    int64_t i = i0 + ty * 4 + ii;
    rowL[ii] = i < shape.seq ? lse[rowBase + i] : 0.0f;
    rowD[ii] = i < shape.seq ? delta[rowBase + i] : 0.0f;
  }
  float dqAcc[Chunks][4][4] = {};
  if (Chunks == 1) { // the queries and their gradients stay
    loadA(qT, qHead, i0, 0);
    loadA(oT, oHead, i0, 0);
  }
  int64_t keyEnd = keyEndOf(shape, i0);
  for (int64_t k0 = keyBeginOf(shape, i0); k0 < keyEnd; k0 += kTile) {
    float s[4][4] = {}, dp[4][4] = {}; // [query][key]
#pragma unroll
    for (int c = 0; c < Chunks; ++c) {
      if (Chunks > 1) {
        loadA(qT, qHead, i0, c * kTile);
        loadA(oT, oHead, i0, c * kTile);
      }
      loadB(kB, kHead, k0, c * kTile);
      loadB(vB, vHead, k0, c * kTile);
      __syncthreads();
      tileDot(qT, kB, s);  // q_i . k_j
      tileDot(oT, vB, dp); // dOut_i . v_j
      __syncthreads();
    }
#pragma unroll
    for (int ii = 0; ii < 4; ++ii)
#pragma unroll
      for (int jj = 0; jj < 4; ++jj)
        softmaxGrad(shape, visible(shape, i0 + ty * 4 + ii, k0 + tx + 16 * jj),
                    rowL[ii], rowD[ii], s[ii][jj], dp[ii][jj]);
    accumulateChunks(dp, dsA, kB, kHead, k0, dqAcc); // dq_i += dS_ij k_j
  }

#pragma unroll
  for (int ii = 0; ii < 4; ++ii) {
    int64_t i = i0 + ty * 4 + ii;
    if (i >= shape.seq)
      continue;
#pragma unroll
    for (int c = 0; c < Chunks; ++c)
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        int d = c * kTile + tx + 16 * g;
        if (d < shape.headDim)
          dq[qHead.index(i, d)] = dqAcc[c][ii][g];
      }
  }
}

/// allowSharedBytes for `Buffers` tile buffers.
template <int Buffers, typename Kernel>
size_t allowSharedMemory(Kernel kernel, const char *what) {
  constexpr size_t bytes = size_t(Buffers) * kBuffer * sizeof(float);
  static_assert(bytes <= kPortableSharedBytes);
  return allowSharedBytes(kernel, bytes, what);
}

/// `blocks` (batch x heads or x kv heads) times the sequence's 64-row tiles.
inline dim3 tileGrid(int64_t blocks, const Shape &shape) {
  return dim3(static_cast<unsigned>(blocks),
              static_cast<unsigned>((shape.seq + kTile - 1) / kTile));
}

// Each launcher sets its kernels' limits once, on the first (eager) call,
// before any graph capture.
template <int Chunks>
void forwardChunks(const float *q, const float *k, const float *v,
                   const Shape &shape, float *out, float *lse) {
  const char *what = "moert::cuda::attention";
  static const size_t bytes = allowSharedMemory<3>(forwardKernel<Chunks>, what);
  forwardKernel<Chunks>
      <<<tileGrid(shape.batch * shape.heads, shape), kAttentionThreads, bytes,
         stream()>>>(q, k, v, shape, out, lse);
  checkLaunch(what);
}

template <int Chunks>
void backwardChunks(const float *q, const float *k, const float *v,
                    const float *dOut, const Shape &shape, const float *lse,
                    const float *delta, float *dq, float *dk, float *dv) {
  const char *what = "moert::cuda::attentionGrad";
  static const size_t keyBytes =
      allowSharedMemory<5>(keyValueGradKernel<Chunks>, what);
  static const size_t queryBytes =
      allowSharedMemory<5>(queryGradKernel<Chunks>, what);
  keyValueGradKernel<Chunks>
      <<<tileGrid(shape.batch * shape.kvHeads, shape), kAttentionThreads,
         keyBytes, stream()>>>(q, k, v, dOut, shape, lse, delta, dk, dv);
  checkLaunch("moert::cuda::attentionGrad (dK, dV)");
  queryGradKernel<Chunks>
      <<<tileGrid(shape.batch * shape.heads, shape), kAttentionThreads,
         queryBytes, stream()>>>(q, k, v, dOut, shape, lse, delta, dq);
  checkLaunch("moert::cuda::attentionGrad (dQ)");
}

/// Chunks of 64 head dims: 1 to kMaxChunks (makeShape checked the bound).
inline int chunksOf(const Shape &shape) {
  return (shape.headDim + kTile - 1) / kTile;
}

inline void forward(const float *q, const float *k, const float *v,
                    const Shape &shape, float *out, float *lse) {
  switch (chunksOf(shape)) {
  case 1:
    return forwardChunks<1>(q, k, v, shape, out, lse);
  case 2:
    return forwardChunks<2>(q, k, v, shape, out, lse);
  case 3:
    return forwardChunks<3>(q, k, v, shape, out, lse);
  default:
    return forwardChunks<4>(q, k, v, shape, out, lse);
  }
}

/// lse and delta: the forward's log-sum-exp and rowDots' dOut . out.
inline void backward(const float *q, const float *k, const float *v,
                     const float *dOut, const Shape &shape, const float *lse,
                     const float *delta, float *dq, float *dk, float *dv) {
  switch (chunksOf(shape)) {
  case 1:
    return backwardChunks<1>(q, k, v, dOut, shape, lse, delta, dq, dk, dv);
  case 2:
    return backwardChunks<2>(q, k, v, dOut, shape, lse, delta, dq, dk, dv);
  case 3:
    return backwardChunks<3>(q, k, v, dOut, shape, lse, delta, dq, dk, dv);
  default:
    return backwardChunks<4>(q, k, v, dOut, shape, lse, delta, dq, dk, dv);
  }
}

} // namespace moert::cuda::flash

#endif // MOERT_CUDA_ATTENTIONKERNELS_CUH
