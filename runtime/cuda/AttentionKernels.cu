//===- AttentionKernels.cu - CUDA attention kernels -----------------------===//
//
// moe.attention, moe.attention_grad and moe.attention_sinks_grad of
// CudaKernels.h: a fused flash-style kernel on CUDA cores for f32 operands
// (AttentionKernels.cuh) and on tensor cores for bf16 ones
// (TensorCoreAttention.cuh, WarpGroupAttention.cuh); RoPE is in
// RopeKernels.cu.
//
// Reproducibility: no float atomics; the sinks' gradient sums a head's
// rows in a fixed tree.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"

#include "AttentionKernels.cuh"
#include "Scratch.h"
#include "Support.h"
#include "WarpGroupAttention.cuh"

using namespace moert::cuda;

namespace {

/// dOut . out of each query row (rowDots) in the workspace, valid until
/// the next call that takes it.
template <typename T>
float *rowDotsInWorkspace(const T *dOut, const T *out,
                          const flash::Shape &shape) {
  float *delta = nullptr;
  carveWorkspace([&](Scratch &scratch) {
    delta = scratch.take<float>(shape.batch * shape.heads * shape.seq);
  });
  flash::rowDots(dOut, out, shape, delta);
  return delta;
}

template <typename T>
void attentionGradOf(const T *q, const T *k, const T *v, const T *out,
                     const float *lse, const T *dOut, int64_t batch,
                     int64_t seq, int64_t heads, int64_t kvHeads,
                     int64_t headDim, AttentionMask mask, float *dq, float *dk,
                     float *dv) {
  if (batch == 0 || seq == 0 || heads == 0 || headDim == 0)
    return;
  flash::Shape shape =
      flash::makeShape(batch, seq, heads, kvHeads, headDim, mask);
  // dOut . out per query row, then dK and dV by key tile, then dQ by query
  // tile, from the forward's log-sum-exp.
  float *delta = rowDotsInWorkspace(dOut, out, shape);
  flash::backward(q, k, v, dOut, shape, lse, delta, dq, dk, dv);
}

/// dSinks[h] = -sum over head h's rows of exp(sink - lse) delta, one block
/// a head, each thread over rows kThreads apart, then a tree over the
/// threads: a fixed order, so reproducible.
__global__ void __launch_bounds__(kThreads)
    attentionSinksGradKernel(const float *sinks, const float *lse,
                             const float *delta, flash::Shape shape,
                             float *dSinks) {
  __shared__ float partial[kThreads];
  int h = blockIdx.x;
  float sink = sinks[h], sum = 0.0f;
  for (int64_t r = threadIdx.x; r < shape.batch * shape.seq; r += kThreads) {
    int64_t at = shape.statistics(r / shape.seq, h) + r % shape.seq;
    sum += expf(sink - lse[at]) * delta[at];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width)
      partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    dSinks[h] = -partial[0];
}

} // namespace

template <typename T>
void moert::cuda::attentionSinksGrad(const float *sinks, const float *lse,
                                     const T *out, const T *dOut, int64_t batch,
                                     int64_t seq, int64_t heads,
                                     int64_t headDim, float *dSinks) {
  if (heads == 0)
    return;
  flash::Shape shape = flash::makeShape(batch, seq, heads, heads, headDim,
                                        moert::AttentionMask{true});
  float *delta = rowDotsInWorkspace(dOut, out, shape);
  attentionSinksGradKernel<<<heads, kThreads, 0, stream()>>>(sinks, lse, delta,
                                                             shape, dSinks);
  checkLaunch("moert::cuda::attentionSinksGrad");
}
template void moert::cuda::attentionSinksGrad(const float *, const float *,
                                              const float *, const float *,
                                              int64_t, int64_t, int64_t,
                                              int64_t, float *);
template void moert::cuda::attentionSinksGrad(const float *, const float *,
                                              const bf16 *, const bf16 *,
                                              int64_t, int64_t, int64_t,
                                              int64_t, float *);

template <typename Operand, typename Result>
void moert::cuda::attention(const Operand *q, const Operand *k,
                            const Operand *v, const float *sinks, int64_t batch,
                            int64_t seq, int64_t heads, int64_t kvHeads,
                            int64_t headDim, AttentionMask mask, Result *out,
                            float *lse) {
  if (batch == 0 || seq == 0 || heads == 0 || headDim == 0)
    return;
  flash::forward(
      q, k, v,
      flash::makeShape(batch, seq, heads, kvHeads, headDim, mask, sinks), out,
      lse);
}
template void moert::cuda::attention(const float *, const float *,
                                     const float *, const float *, int64_t,
                                     int64_t, int64_t, int64_t, int64_t,
                                     AttentionMask, float *, float *);
template void moert::cuda::attention(const bf16 *, const bf16 *, const bf16 *,
                                     const float *, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, AttentionMask, float *,
                                     float *);
template void moert::cuda::attention(const bf16 *, const bf16 *, const bf16 *,
                                     const float *, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, AttentionMask, bf16 *,
                                     float *);

void moert::cuda::attentionGrad(const float *q, const float *k, const float *v,
                                const float *out, const float *lse,
                                const float *dOut, int64_t batch, int64_t seq,
                                int64_t heads, int64_t kvHeads, int64_t headDim,
                                AttentionMask mask, float *dq, float *dk,
                                float *dv) {
  attentionGradOf(q, k, v, out, lse, dOut, batch, seq, heads, kvHeads, headDim,
                  mask, dq, dk, dv);
}

void moert::cuda::attentionGrad(const bf16 *q, const bf16 *k, const bf16 *v,
                                const bf16 *out, const float *lse,
                                const bf16 *dOut, int64_t batch, int64_t seq,
                                int64_t heads, int64_t kvHeads, int64_t headDim,
                                AttentionMask mask, float *dq, float *dk,
                                float *dv) {
  attentionGradOf(q, k, v, out, lse, dOut, batch, seq, heads, kvHeads, headDim,
                  mask, dq, dk, dv);
}
