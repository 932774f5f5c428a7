//===- AttentionKernels.cpp - CPU attention kernels -----------------------===//
//
// moe.attention and moe.attention_grad of CpuKernels.h. Each (batch, head)
// task runs its products through smallGemm, a block of query rows at a
// time. At batch 12, seq 64, 4 heads of 32 this measured ~1.5x faster than
// per-head BLAS GEMM calls (which must stay serial) around an OpenMP
// softmax; and recomputing a block's probabilities in the backward, from
// the forward's log-sum-exp, costs less than storing [seq, seq].
//
// bf16 operands (mixed precision) run their products as paired GEMMs
// (PairedBf16Gemm.h) where the CPU has AVX-512 BF16: on AMX tiles where it
// has AMX (about twice as fast as f32 at the small benchmark's heads on a
// Xeon), else on AVX-512 BF16's dot product (as fast on a Xeon, twice as
// fast on an AMD EPYC); elsewhere they are widened per head and the
// products run in f32 as for f32 operands.
// Either way the f32 intermediates that a bf16 GEMM would read (the
// probabilities before they multiply V or dOut, the scores' gradients
// before they multiply K or Q) are rounded to bf16 first, as the reference
// kernels and tensor-core kernels do.
//
// Reproducibility: each task owns its outputs (dK and dV belong to a (batch,
// kv head) task, which sums over its query heads and rows in order).
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"

#include "PairedBf16Gemm.h"
#include "Softmax.h"
#include "Vectorize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

using moert::bf16;
using moert::cpu::detail::expAndSumPadded;
using moert::cpu::detail::rowMax;

/// Tasks over less work than this run on the calling thread.
constexpr int64_t kGrain = 1 << 15;

typedef float Vec4 __attribute__((vector_size(16)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec16 __attribute__((vector_size(64)));

/// Arguments of C[m x n] = A[m x k] B[k x n] (+ C if accumulate), where
/// A(i, p) = a[i * aRow + p * aCol] (so A may be a transpose) and B and C are
/// row-major with leading dimensions ldb and ldc.
struct Gemm {
  int64_t m, n, k;
  const float *a;
  int64_t aRow, aCol;
  const float *b;
  int64_t ldb;
  float *c;
  int64_t ldc;
  bool accumulate;
};

/// Rows [i, i + R) and CV vectors V of columns from j of C, summing over p
/// in order with the sums in registers.
template <typename V, int R, int CV>
MOERT_INLINE void gemmTile(const Gemm &g, int64_t i, int64_t j) {
  constexpr int64_t kWidth = sizeof(V) / sizeof(float);
  V acc[R][CV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < CV; ++v) {
      acc[r][v] = V{};
      if (g.accumulate)
        std::memcpy(&acc[r][v], g.c + (i + r) * g.ldc + j + kWidth * v,
                    sizeof(V));
    }
  for (int64_t p = 0; p < g.k; ++p) {
    V b[CV];
    for (int v = 0; v < CV; ++v)
      std::memcpy(&b[v], g.b + p * g.ldb + j + kWidth * v, sizeof(V));
    for (int r = 0; r < R; ++r) {
      float a = g.a[(i + r) * g.aRow + p * g.aCol];
      for (int v = 0; v < CV; ++v)
        acc[r][v] += b[v] * a;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < CV; ++v)
      std::memcpy(g.c + (i + r) * g.ldc + j + kWidth * v, &acc[r][v],
                  sizeof(V));
}

template <typename V, int R>
MOERT_INLINE void gemmRows(const Gemm &g, int64_t i) {
  constexpr int kWidth = sizeof(V) / sizeof(float);
  int64_t j = 0;
  for (; j + 16 <= g.n; j += 16)
    gemmTile<V, R, 16 / kWidth>(g, i, j);
  if constexpr (kWidth <= 8) {
    if (j + 8 <= g.n) {
      gemmTile<V, R, 8 / kWidth>(g, i, j);
      j += 8;
    }
  }
  for (; j < g.n; ++j) // columns past the vectors, one by one
    for (int r = 0; r < R; ++r) {
      float *c = g.c + (i + r) * g.ldc + j;
      float sum = g.accumulate ? *c : 0.0f;
      for (int64_t p = 0; p < g.k; ++p)
        sum += g.a[(i + r) * g.aRow + p * g.aCol] * g.b[p * g.ldb + j];
      *c = sum;
    }
}

template <typename V, int R> MOERT_INLINE void gemmAll(const Gemm &g) {
  int64_t i = 0;
  for (; i + R <= g.m; i += R)
    gemmRows<V, R>(g, i);
  if constexpr (R > 4) {
    if (i + 4 <= g.m) {
      gemmRows<V, 4>(g, i);
      i += 4;
    }
  }
  for (; i < g.m; ++i)
    gemmRows<V, 1>(g, i);
}

// AVX-512 or AVX2 + FMA when the CPU has them (the build targets baseline
// x86-64): 8 x 16 tiles take 8 of AVX-512's 32 zmm registers, 6 x 16 tiles
// 12 of AVX2's 16 ymm (measured 10-15% faster than 4 x 16 on an AMD EPYC);
// SSE has room for 2 x 16. A machine always takes the same path, so results
// stay reproducible.
#if defined(__x86_64__) && !defined(__AVX2__)
__attribute__((target("avx512f,fma"))) void gemmAvx512(const Gemm &g) {
  gemmAll<Vec16, 8>(g);
}
__attribute__((target("avx2,fma"))) void gemmAvx2(const Gemm &g) {
  gemmAll<Vec8, 6>(g);
}
void gemmBaseline(const Gemm &g) { gemmAll<Vec4, 2>(g); }
void smallGemm(const Gemm &g) {
  static const bool avx512 =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  static const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  avx512 ? gemmAvx512(g) : avx2 ? gemmAvx2(g) : gemmBaseline(g);
}
#else
void smallGemm(const Gemm &g) { gemmAll<Vec8, 6>(g); }
#endif

/// The keys a block of query rows sees: [begin, end), begin rounded down to
/// a whole 16-column tile (a multiple of 16, so even too), which the
/// products of the block start from.
struct KeyRange {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
  /// The columns of the score products: whole tiles from begin.
  int64_t tiles() const { return (end + 15) / 16 * 16 - begin; }
};

struct AttentionShape {
  int64_t seq, heads, kvHeads, headDim;
  moert::AttentionMask mask;
  /// Each head's sink logit, or null: no sinks.
  const float *sinks = nullptr;

  /// Head h's sink logit; -inf (no weight in the softmax) without sinks.
  float sink(int64_t h) const { return sinks ? sinks[h] : -INFINITY; }
  /// Columns of the transposed K and V heads and of the score blocks: seq
  /// rounded up to whole 16-column tiles (the padding is zero).
  int64_t padded() const { return (seq + 15) / 16 * 16; }

  /// Offset of (b, s, h) in a [batch, seq, numHeads, headDim] tensor.
  int64_t at(int64_t b, int64_t s, int64_t h, int64_t numHeads) const {
    return ((b * seq + s) * numHeads + h) * headDim;
  }
  /// Query heads per kv head, and the elements between two positions of
  /// the queries' and of the keys' [batch, seq, numHeads, headDim] tensors.
  int64_t group() const { return heads / kvHeads; }
  int64_t queryStride() const { return heads * headDim; }
  int64_t keyStride() const { return kvHeads * headDim; }
  /// The keys query rows [i, i + rows) see, together.
  KeyRange blockKeys(int64_t i, int64_t rows) const {
    return {mask.firstKey(i) / 16 * 16, mask.endKey(i + rows - 1, seq)};
  }
  /// Offset of query row i of head h of batch b in a [batch, heads, seq]
  /// tensor of row statistics (the log-sum-exp).
  int64_t statisticsAt(int64_t b, int64_t h, int64_t i) const {
    return (b * heads + h) * seq + i;
  }
  float scale() const {
    return static_cast<float>(1.0 / std::sqrt(static_cast<double>(headDim)));
  }
};

/// One head of a [batch, seq, numHeads, headDim] input as f32 rows `stride`
/// apart.
struct HeadRows {
  const float *rows;
  int64_t stride;
  const float *row(int64_t i) const { return rows + i * stride; }
};

/// Head h of batch b of `tensor`: an f32 tensor in place, a bf16 one
/// widened (exactly) into `buffer`.
template <typename T>
HeadRows headRows(const T *tensor, const AttentionShape &shape, int64_t b,
                  int64_t h, int64_t numHeads, std::vector<float> &buffer) {
  const T *head = tensor + shape.at(b, 0, h, numHeads);
  int64_t stride = numHeads * shape.headDim;
  if constexpr (std::is_same_v<T, bf16>) {
    buffer.resize(shape.seq * shape.headDim);
    for (int64_t j = 0; j < shape.seq; ++j)
      for (int64_t d = 0; d < shape.headDim; ++d)
        buffer[j * shape.headDim + d] = moert::toFloat(head[j * stride + d]);
    return {buffer.data(), shape.headDim};
  } else {
    return {head, stride};
  }
}

/// t[d * padded + j] = head(j, d), zero for j >= seq: one head of K or V
/// with the positions contiguous. By 16 x 16 blocks, whose rows stay in
/// cache lines both ways (2.6x faster on AVX-512 than row by row in
/// baseline SSE; 1.3% of the tiny model's step was these transposes).
MOERT_CLONES void transposeHead(const HeadRows &head,
                                const AttentionShape &shape, float *t) {
  constexpr int64_t kBlock = 16;
  int64_t padded = shape.padded();
  for (int64_t d = 0; d < shape.headDim; ++d)
    std::fill(t + d * padded + shape.seq, t + (d + 1) * padded, 0.0f);
  for (int64_t j0 = 0; j0 < shape.seq; j0 += kBlock)
    for (int64_t d0 = 0; d0 < shape.headDim; d0 += kBlock) {
      int64_t jEnd = std::min(j0 + kBlock, shape.seq);
      int64_t dEnd = std::min(d0 + kBlock, shape.headDim);
      for (int64_t d = d0; d < dEnd; ++d)
        for (int64_t j = j0; j < jEnd; ++j)
          t[d * padded + j] = head.rows[j * head.stride + d];
    }
}

/// exp(score * scale - shift) of the scores row[j] of query i for the keys
/// of `keys` in place, zero for the keys it does not see; returns the sum.
/// The keys before its window count as -inf, so that the exponentials run
/// from the block's tile-aligned first key.
float expOfVisible(const AttentionShape &shape, int64_t i, KeyRange keys,
                   float shift, float *row) {
  int64_t first = shape.mask.firstKey(i), end = shape.mask.endKey(i, shape.seq);
  std::fill(row + keys.begin, row + first, -INFINITY);
  float sum = expAndSumPadded(row + keys.begin, end - keys.begin, shape.scale(),
                              shift, row + keys.begin);
  // The exponential clamps its argument, so -inf gave a tiny number.
  std::fill(row + keys.begin, row + first, 0.0f);
  std::fill(row + end, row + keys.end, 0.0f);
  return sum;
}

/// Softmax of the scores p[r * padded + j] of query rows [i, i + rows) over
/// the keys of `keys` and the head's `sink` logit in place, zero for the
/// keys a row does not see. Each row's log-sum-exp of its scaled scores and
/// its sink goes to lse[r].
void softmaxRows(const AttentionShape &shape, int64_t i, int64_t rows,
                 KeyRange keys, float sink, float *p, float *lse) {
  int64_t padded = shape.padded();
  for (int64_t r = 0; r < rows; ++r) {
    float *row = p + r * padded;
    int64_t first = shape.mask.firstKey(i + r),
            end = shape.mask.endKey(i + r, shape.seq);
    float shift =
        std::max(rowMax(row + first, end - first) * shape.scale(), sink);
    float sum =
        expOfVisible(shape, i + r, keys, shift, row) + std::exp(sink - shift);
    lse[r] = shift + std::log(sum);
    float inverse = 1.0f / sum;
#pragma omp simd
    for (int64_t j = first; j < end; ++j)
      row[j] *= inverse;
  }
}

/// The probabilities exp(score - lse) of the scores p[r * padded + j] of
/// query rows [i, i + rows) over the keys of `keys`, from their forward's
/// log-sum-exp lse[r], in place; zero for the keys a row does not see.
void probabilityRows(const AttentionShape &shape, int64_t i, int64_t rows,
                     KeyRange keys, float *p, const float *lse) {
  for (int64_t r = 0; r < rows; ++r)
    expOfVisible(shape, i + r, keys, lse[r], p + r * shape.padded());
}

/// Scores p[r * padded + j] of query rows [i, i + rows) of the head q, from
/// the transposed keys kT, for the whole tiles of the keys any of the rows
/// sees; returns those keys.
KeyRange scoreBlock(const HeadRows &q, const float *kT,
                    const AttentionShape &shape, int64_t i, int64_t rows,
                    float *p) {
  int64_t padded = shape.padded();
  KeyRange keys = shape.blockKeys(i, rows);
  // kT's zero padding keeps the whole tiles in bounds.
  smallGemm({rows, keys.tiles(), shape.headDim, q.row(i), q.stride, 1,
             kT + keys.begin, padded, p + keys.begin, padded, false});
  return keys;
}

/// delta[r] = dOut_r . out_r over the head dim, for `rows` rows `stride`
/// apart: the softmax backward's sum_j p_rj dp_rj, as out_r = sum_j p_rj v_j.
template <typename T>
void rowDots(const T *dOut, const T *out, int64_t stride, int64_t rows,
             int64_t headDim, float *delta) {
  for (int64_t r = 0; r < rows; ++r) {
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t d = 0; d < headDim; ++d)
      dot += moert::toFloat(dOut[r * stride + d]) *
             moert::toFloat(out[r * stride + d]);
    delta[r] = dot;
  }
}

/// The softmax backward of `rows` rows `padded` apart: dS holds dp_ij on
/// entry and the scores' gradients ds_ij = p_ij (dp_ij - delta_i) scale on
/// return, for j < width (masked entries have p = 0, so ds = 0).
void softmaxGradRows(const float *p, const float *delta, float *dS,
                     int64_t rows, int64_t width, int64_t padded, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *pr = p + r * padded;
    float *dSr = dS + r * padded;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      dSr[j] = pr[j] * (dSr[j] - delta[r]) * scale;
  }
}

/// A product's `rows` x `cols` result into out's rows `ld` apart: an f32
/// result in place, a bf16 one through `scratch`, rounded as it is stored.
template <typename Result, typename Product>
void productInto(Result *out, int64_t ld, int64_t rows, int64_t cols,
                 std::vector<float> &scratch, Product product) {
  if constexpr (std::is_same_v<Result, float>) {
    product(out, ld);
  } else {
    scratch.resize(rows * cols);
    product(scratch.data(), cols);
    for (int64_t r = 0; r < rows; ++r)
      moert::cpu::convert(scratch.data() + r * cols, cols, out + r * ld);
  }
}

/// The first `cols` of `rows` rows `ld` apart of `from` rounded to bf16
/// into `to` (which may be `from`): the operand a bf16 GEMM reads.
void roundRowsToBf16(const float *from, float *to, int64_t rows, int64_t cols,
                     int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      to[r * ld + j] = moert::roundToBf16(from[r * ld + j]);
}

/// The first `width` of `rows` rows `padded` apart of `from` as bf16 pairs
/// in `to`, a zero after an odd width; returns the columns in whole pairs.
int64_t narrowRowsToPairs(float *from, int64_t rows, int64_t width,
                          int64_t padded, bf16 *to) {
  int64_t even = (width + 1) / 2 * 2;
  for (int64_t r = 0; r < rows; ++r) {
    if (even != width)
      from[r * padded + width] = 0.0f;
    moert::cpu::convert(from + r * padded, even, to + r * padded);
  }
  return even;
}

// Query rows per block: 16 amortizes the dK and dV updates (measured best
// of 4 to 64 at seq 64) and wastes little on causal masking.
constexpr int64_t kQueryBlock = 16;

/// Query rows per block of the paired products: on AMX, two tiles' rows
/// halve the loads and stores of dK's and dV's f32 tiles per update (one
/// layer of the small benchmark model, seq 256: 13-17% faster than 16, the
/// same as 64).
int64_t pairedQueryBlock() {
  return moert::cpu::detail::hasAmxBf16() ? 2 * kQueryBlock : kQueryBlock;
}

/// bf16 operands run as pairs of bf16 (paired GEMMs, on AMX tiles or
/// AVX-512 BF16's dot product) where the CPU has AVX-512 BF16 and the heads
/// split into pairs; elsewhere they are widened and multiplied in f32.
bool usePairedProducts(int64_t headDim) {
  return headDim % 2 == 0 && moert::cpu::detail::hasAvx512Bf16();
}

template <typename Operand, typename Result>
void attentionInF32(const Operand *q, const Operand *k, const Operand *v,
                    int64_t batch, const AttentionShape &shape, Result *out,
                    float *lse) {
  int64_t heads = shape.heads, headDim = shape.headDim, seq = shape.seq;
  int64_t group = shape.group(), padded = shape.padded(), tasks = batch * heads;
#pragma omp parallel if (tasks * seq * seq * headDim >= kGrain)
  {
    std::vector<float> kT(headDim * padded), p(kQueryBlock * padded);
    std::vector<float> qBuffer, kBuffer, vBuffer, rowsOut;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t b = task / heads, h = task % heads, kvHead = h / group;
      HeadRows qHead = headRows(q, shape, b, h, heads, qBuffer);
      HeadRows vHead = headRows(v, shape, b, kvHead, shape.kvHeads, vBuffer);
      transposeHead(headRows(k, shape, b, kvHead, shape.kvHeads, kBuffer),
                    shape, kT.data());
      for (int64_t i = 0; i < seq; i += kQueryBlock) {
        int64_t rows = std::min(kQueryBlock, seq - i);
        KeyRange keys = scoreBlock(qHead, kT.data(), shape, i, rows, p.data());
        float *pKeys = p.data() + keys.begin;
        softmaxRows(shape, i, rows, keys, shape.sink(h), p.data(),
                    lse + shape.statisticsAt(b, h, i));
        if constexpr (std::is_same_v<Operand, bf16>)
          roundRowsToBf16(pKeys, pKeys, rows, keys.size(), padded);
        // out_i = sum_j p_ij v_j.
        productInto(out + shape.at(b, i, h, heads), shape.queryStride(), rows,
                    headDim, rowsOut, [&](float *c, int64_t ldc) {
                      smallGemm({rows, headDim, keys.size(), pKeys, padded, 1,
                                 vHead.row(keys.begin), vHead.stride, c, ldc,
                                 false});
                    });
      }
    }
  }
}

template <typename Result>
void attentionOnPairs(const bf16 *q, const bf16 *k, const bf16 *v,
                      int64_t batch, const AttentionShape &shape, Result *out,
                      float *lse) {
  using namespace moert::cpu::detail;
  const int64_t queryBlock = pairedQueryBlock();
  int64_t heads = shape.heads, headDim = shape.headDim, seq = shape.seq;
  int64_t group = shape.group(), padded = shape.padded(), tasks = batch * heads;
  int64_t qStride = shape.queryStride(), kvStride = shape.keyStride();
#pragma omp parallel if (tasks * seq * seq * headDim >= kGrain)
  {
    std::vector<bf16> kPairs(headDim * padded), vPairs(padded * headDim);
    std::vector<bf16> pRows(queryBlock * padded);
    std::vector<float> p(queryBlock * padded), rowsOut;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t b = task / heads, h = task % heads, kvHead = h / group;
      const bf16 *qHead = q + shape.at(b, 0, h, heads);
      pairColumns(k + shape.at(b, 0, kvHead, shape.kvHeads), kvStride, seq,
                  headDim, padded, kPairs.data());
      pairRows(v + shape.at(b, 0, kvHead, shape.kvHeads), kvStride, seq,
               headDim, padded / 2, vPairs.data());
      for (int64_t i = 0; i < seq; i += queryBlock) {
        int64_t rows = std::min(queryBlock, seq - i);
        KeyRange keys = shape.blockKeys(i, rows);
        // Scores for whole tiles: the keys' zero padding keeps them in
        // bounds.
        pairedGemm({rows, keys.tiles(), headDim / 2, qHead + i * qStride,
                    qStride, kPairs.data() + 2 * keys.begin, 2 * padded,
                    p.data() + keys.begin, padded, false});
        softmaxRows(shape, i, rows, keys, shape.sink(h), p.data(),
                    lse + shape.statisticsAt(b, h, i));
        int64_t pairs =
            narrowRowsToPairs(p.data() + keys.begin, rows, keys.size(), padded,
                              pRows.data() + keys.begin) /
            2;
        // out_i = sum_j p_ij v_j.
        productInto(out + shape.at(b, i, h, heads), qStride, rows, headDim,
                    rowsOut, [&](float *c, int64_t ldc) {
                      pairedGemm({rows, headDim, pairs,
                                  pRows.data() + keys.begin, padded,
                                  vPairs.data() + keys.begin * headDim,
                                  2 * headDim, c, ldc, false});
                    });
      }
    }
  }
}

} // namespace

template <typename Operand, typename Result>
void moert::cpu::attention(const Operand *q, const Operand *k, const Operand *v,
                           const float *sinks, int64_t batch, int64_t seq,
                           int64_t heads, int64_t kvHeads, int64_t headDim,
                           moert::AttentionMask mask, Result *out, float *lse) {
  AttentionShape shape{seq, heads, kvHeads, headDim, mask, sinks};
  if constexpr (std::is_same_v<Operand, bf16>) {
    if (usePairedProducts(headDim))
      return attentionOnPairs(q, k, v, batch, shape, out, lse);
  }
  attentionInF32(q, k, v, batch, shape, out, lse);
}
template void moert::cpu::attention(const float *, const float *, const float *,
                                    const float *, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, moert::AttentionMask,
                                    float *, float *);
template void moert::cpu::attention(const bf16 *, const bf16 *, const bf16 *,
                                    const float *, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, moert::AttentionMask,
                                    float *, float *);
template void moert::cpu::attention(const bf16 *, const bf16 *, const bf16 *,
                                    const float *, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, moert::AttentionMask,
                                    bf16 *, float *);

namespace {

/// Zeroes the dK and dV rows of one (batch, kv head) task.
void zeroKeyHeadGrads(const AttentionShape &shape, int64_t b, int64_t kvHead,
                      float *dk, float *dv) {
  for (int64_t j = 0; j < shape.seq; ++j) {
    std::fill_n(dk + shape.at(b, j, kvHead, shape.kvHeads), shape.headDim,
                0.0f);
    std::fill_n(dv + shape.at(b, j, kvHead, shape.kvHeads), shape.headDim,
                0.0f);
  }
}

template <typename T>
void attentionGradInF32(const T *q, const T *k, const T *v, const T *out,
                        const float *lse, const T *dOut, int64_t batch,
                        const AttentionShape &shape, float *dq, float *dk,
                        float *dv) {
  int64_t heads = shape.heads, kvHeads = shape.kvHeads, seq = shape.seq;
  int64_t headDim = shape.headDim, group = shape.group(),
          padded = shape.padded();
  int64_t qStride = shape.queryStride(), kvStride = shape.keyStride();
  float scale = shape.scale();
  // One task per (batch, kv head): it owns that head's dK and dV, summing
  // over its query heads and rows in order, so nothing is shared.
  int64_t tasks = batch * kvHeads;
#pragma omp parallel if (tasks * group * seq * seq * headDim >= kGrain)
  {
    std::vector<float> kT(headDim * padded), vT(headDim * padded),
        p(kQueryBlock * padded), pOperand(kQueryBlock * padded),
        dS(kQueryBlock * padded), delta(kQueryBlock);
    std::vector<float> qBuffer, kBuffer, vBuffer, dOutBuffer;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t b = task / kvHeads, kvHead = task % kvHeads;
      HeadRows kHead = headRows(k, shape, b, kvHead, kvHeads, kBuffer);
      transposeHead(kHead, shape, kT.data());
      transposeHead(headRows(v, shape, b, kvHead, kvHeads, vBuffer), shape,
                    vT.data());
      float *dkHead = dk + shape.at(b, 0, kvHead, kvHeads);
      float *dvHead = dv + shape.at(b, 0, kvHead, kvHeads);
      zeroKeyHeadGrads(shape, b, kvHead, dk, dv);
      for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
        HeadRows qHead = headRows(q, shape, b, h, heads, qBuffer);
        HeadRows dOutHead = headRows(dOut, shape, b, h, heads, dOutBuffer);
        for (int64_t i = 0; i < seq; i += kQueryBlock) {
          int64_t rows = std::min(kQueryBlock, seq - i);
          KeyRange keys =
              scoreBlock(qHead, kT.data(), shape, i, rows, p.data());
          int64_t first = keys.begin, width = keys.size();
          probabilityRows(shape, i, rows, keys, p.data(),
                          lse + shape.statisticsAt(b, h, i));
          rowDots(dOut + shape.at(b, i, h, heads),
                  out + shape.at(b, i, h, heads), qStride, rows, headDim,
                  delta.data());
          // The softmax backward reads p itself, dV's GEMM its operand.
          const float *pGemm = p.data() + first;
          if constexpr (std::is_same_v<T, bf16>) {
            roundRowsToBf16(p.data() + first, pOperand.data() + first, rows,
                            width, padded);
            pGemm = pOperand.data() + first;
          }
          // out_i = sum_j p_ij v_j: dv_j += p_ij dOut_i, dp_ij = dOut_i . v_j.
          smallGemm({width, headDim, rows, pGemm, 1, padded, dOutHead.row(i),
                     dOutHead.stride, dvHead + first * kvStride, kvStride,
                     true});
          float *dSKeys = dS.data() + first;
          smallGemm({rows, keys.tiles(), headDim, dOutHead.row(i),
                     dOutHead.stride, 1, vT.data() + first, padded, dSKeys,
                     padded, false});
          // Softmax backward; then, as s_ij = scale q_i . k_j,
          // dq_i = sum_j ds_ij k_j and dk_j += ds_ij q_i.
          softmaxGradRows(p.data() + first, delta.data(), dSKeys, rows, width,
                          padded, scale);
          if constexpr (std::is_same_v<T, bf16>)
            roundRowsToBf16(dSKeys, dSKeys, rows, width, padded);
          smallGemm({rows, headDim, width, dSKeys, padded, 1, kHead.row(first),
                     kHead.stride, dq + shape.at(b, i, h, heads), qStride,
                     false});
          smallGemm({width, headDim, rows, dSKeys, 1, padded, qHead.row(i),
                     qHead.stride, dkHead + first * kvStride, kvStride, true});
        }
      }
    }
  }
}

void attentionGradOnPairs(const bf16 *q, const bf16 *k, const bf16 *v,
                          const bf16 *out, const float *lse, const bf16 *dOut,
                          int64_t batch, const AttentionShape &shape, float *dq,
                          float *dk, float *dv) {
  using namespace moert::cpu::detail;
  const int64_t queryBlock = pairedQueryBlock();
  int64_t heads = shape.heads, kvHeads = shape.kvHeads, seq = shape.seq;
  int64_t headDim = shape.headDim, group = shape.group(),
          padded = shape.padded();
  int64_t qStride = shape.queryStride(), kvStride = shape.keyStride();
  float scale = shape.scale();
  // As in attentionGradInF32, a task owns its (batch, kv head)'s dK and dV.
  int64_t tasks = batch * kvHeads;
#pragma omp parallel if (tasks * group * seq * seq * headDim >= kGrain)
  {
    // The keys as B of the scores (pairs along d) and of dQ (pairs along
    // positions), the values as B of dp; a block's probabilities and
    // scores' gradients as rows (A along positions) and transposed (A of dV
    // and dK), its dOut and q rows as B of dV and dK.
    std::vector<bf16> kPairs(headDim * padded), kRowPairs(padded * headDim),
        vPairs(headDim * padded), pRows(queryBlock * padded),
        dSRows(queryBlock * padded), transposed(padded * queryBlock),
        blockPairs(queryBlock * headDim);
    std::vector<float> p(queryBlock * padded), dS(queryBlock * padded),
        delta(queryBlock);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t b = task / kvHeads, kvHead = task % kvHeads;
      const bf16 *kHead = k + shape.at(b, 0, kvHead, kvHeads);
      const bf16 *vHead = v + shape.at(b, 0, kvHead, kvHeads);
      pairColumns(kHead, kvStride, seq, headDim, padded, kPairs.data());
      pairRows(kHead, kvStride, seq, headDim, padded / 2, kRowPairs.data());
      pairColumns(vHead, kvStride, seq, headDim, padded, vPairs.data());
      float *dkHead = dk + shape.at(b, 0, kvHead, kvHeads);
      float *dvHead = dv + shape.at(b, 0, kvHead, kvHeads);
      zeroKeyHeadGrads(shape, b, kvHead, dk, dv);
      for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
        const bf16 *qHead = q + shape.at(b, 0, h, heads);
        const bf16 *dOutHead = dOut + shape.at(b, 0, h, heads);
        for (int64_t i = 0; i < seq; i += queryBlock) {
          int64_t rows = std::min(queryBlock, seq - i);
          int64_t rowPairs = (rows + 1) / 2;
          KeyRange keys = shape.blockKeys(i, rows);
          int64_t first = keys.begin, width = keys.size();
          pairedGemm({rows, keys.tiles(), headDim / 2, qHead + i * qStride,
                      qStride, kPairs.data() + 2 * first, 2 * padded,
                      p.data() + first, padded, false});
          probabilityRows(shape, i, rows, keys, p.data(),
                          lse + shape.statisticsAt(b, h, i));
          rowDots(dOut + shape.at(b, i, h, heads),
                  out + shape.at(b, i, h, heads), qStride, rows, headDim,
                  delta.data());
          narrowRowsToPairs(p.data() + first, rows, width, padded,
                            pRows.data() + first);
          // out_i = sum_j p_ij v_j: dv_j += p_ij dOut_i, dp_ij = dOut_i . v_j.
          pairRowsTransposed(pRows.data() + first, padded, rows, width,
                             rowPairs, transposed.data());
          pairRows(dOutHead + i * qStride, qStride, rows, headDim, rowPairs,
                   blockPairs.data());
          pairedGemm({width, headDim, rowPairs, transposed.data(), 2 * rowPairs,
                      blockPairs.data(), 2 * headDim, dvHead + first * kvStride,
                      kvStride, true});
          pairedGemm({rows, keys.tiles(), headDim / 2, dOutHead + i * qStride,
                      qStride, vPairs.data() + 2 * first, 2 * padded,
                      dS.data() + first, padded, false});
          // Softmax backward; then, as s_ij = scale q_i . k_j,
          // dq_i = sum_j ds_ij k_j and dk_j += ds_ij q_i.
          softmaxGradRows(p.data() + first, delta.data(), dS.data() + first,
                          rows, width, padded, scale);
          int64_t pairs = narrowRowsToPairs(dS.data() + first, rows, width,
                                            padded, dSRows.data() + first) /
                          2;
          pairedGemm({rows, headDim, pairs, dSRows.data() + first, padded,
                      kRowPairs.data() + first * headDim, 2 * headDim,
                      dq + shape.at(b, i, h, heads), qStride, false});
          pairRowsTransposed(dSRows.data() + first, padded, rows, width,
                             rowPairs, transposed.data());
          pairRows(qHead + i * qStride, qStride, rows, headDim, rowPairs,
                   blockPairs.data());
          pairedGemm({width, headDim, rowPairs, transposed.data(), 2 * rowPairs,
                      blockPairs.data(), 2 * headDim, dkHead + first * kvStride,
                      kvStride, true});
        }
      }
    }
  }
}

} // namespace

void moert::cpu::attentionGrad(const float *q, const float *k, const float *v,
                               const float *out, const float *lse,
                               const float *dOut, int64_t batch, int64_t seq,
                               int64_t heads, int64_t kvHeads, int64_t headDim,
                               moert::AttentionMask mask, float *dq, float *dk,
                               float *dv) {
  attentionGradInF32(q, k, v, out, lse, dOut, batch,
                     {seq, heads, kvHeads, headDim, mask}, dq, dk, dv);
}

void moert::cpu::attentionGrad(const bf16 *q, const bf16 *k, const bf16 *v,
                               const bf16 *out, const float *lse,
                               const bf16 *dOut, int64_t batch, int64_t seq,
                               int64_t heads, int64_t kvHeads, int64_t headDim,
                               moert::AttentionMask mask, float *dq, float *dk,
                               float *dv) {
  AttentionShape shape{seq, heads, kvHeads, headDim, mask};
  if (usePairedProducts(headDim))
    return attentionGradOnPairs(q, k, v, out, lse, dOut, batch, shape, dq, dk,
                                dv);
  attentionGradInF32(q, k, v, out, lse, dOut, batch, shape, dq, dk, dv);
}

template <typename T>
void moert::cpu::attentionSinksGrad(const float *sinks, const float *lse,
                                    const T *out, const T *dOut, int64_t batch,
                                    int64_t seq, int64_t heads, int64_t headDim,
                                    float *dSinks) {
  // A head's sum runs over its rows in order: reproducible, and the work
  // (one dot product a row) is small next to the attention's.
  std::vector<float> delta(seq);
  for (int64_t h = 0; h < heads; ++h) {
    float sum = 0;
    for (int64_t b = 0; b < batch; ++b) {
      int64_t row = (b * seq * heads + h) * headDim;
      rowDots(dOut + row, out + row, heads * headDim, seq, headDim,
              delta.data());
      const float *rowLse = lse + (b * heads + h) * seq;
      for (int64_t i = 0; i < seq; ++i)
        sum += std::exp(sinks[h] - rowLse[i]) * delta[i];
    }
    dSinks[h] = -sum;
  }
}
template void moert::cpu::attentionSinksGrad(const float *, const float *,
                                             const float *, const float *,
                                             int64_t, int64_t, int64_t, int64_t,
                                             float *);
template void moert::cpu::attentionSinksGrad(const float *, const float *,
                                             const bf16 *, const bf16 *,
                                             int64_t, int64_t, int64_t, int64_t,
                                             float *);
