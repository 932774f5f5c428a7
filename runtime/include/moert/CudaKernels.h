//===- CudaKernels.h - CUDA kernels of the compiled model -------*- C++ -*-===//
//
// The kernels that generated CUDA calls, one per moe op, with the arguments
// and the semantics of their CPU counterparts (moert/CpuKernels.h), which
// the GPU tests compare them against. Each is a host function that enqueues
// its work on the step's stream (moert/CudaTarget.h) and returns at once:
// no host synchronization, no allocation (scratch comes from the target's
// workspace), so that a whole train step can be captured in a CUDA graph.
// As on the CPU, the GEMM kernels also take bf16 operands (mixed
// precision): they accumulate in f32, return f32, and round the experts'
// and attention's intermediates that feed their next GEMM to bf16 (the
// online softmax rounds attention's probabilities before their final
// scaling, the CPU after it: they agree to bf16 rounding, not bit for
// bit).
//
// Differences from the CPU kernels, all because values live on the device:
// - every buffer, counts array and 0-d tensor is device memory; the arrays
//   of a BufferList/SizeList argument are host arrays (of device pointers
//   and of sizes), copied into the launches' parameters;
// - a kernel reads a 0-d input through a device pointer (`const float *`,
//   `const int64_t *`), and writes a 0-d result through a trailing device
//   pointer `result` instead of returning it;
// - a bad index (token id, target, expert index, slot) is recorded in the
//   target's device error word and raised as moert::Error when the host
//   next synchronizes (moert::cuda::checkDeviceErrors).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDAKERNELS_H
#define MOERT_CUDAKERNELS_H

#include "moert/Bf16.h"
#include "moert/KernelTypes.h"

#include <cstdint>

namespace moert::cuda {

using moert::AdamWConfig;
using moert::AuxLossKind;
using moert::CountedTargets;
using moert::GateConfig;
using moert::GridAxes;
using moert::LrDecay;

/// arith.truncf (f32 to bf16, to nearest even) and arith.extf (exact).
void convert(const float *x, int64_t count, bf16 *y);
void convert(const bf16 *x, int64_t count, float *y);

/// A divisor that is either a 0-d tensor on the device or a constant.
struct Divisor {
  Divisor(const float *device) : device(device) {}
  Divisor(double value) : value(value) {}
  const float *device = nullptr;
  double value = 0;
};

//===----------------------------------------------------------------------===//
// Transformer ops. `rows` counts every leading position (batch * seq).
//===----------------------------------------------------------------------===//

void embedding(const float *table, int64_t vocab, int64_t hidden,
               const int32_t *ids, int64_t count, float *out);
void embeddingGrad(const int32_t *ids, int64_t count, const float *dOut,
                   int64_t vocab, int64_t hidden, float *dTable);

/// y is f32, or bf16 (the values rounded); instantiated for both.
template <typename T>
void rmsNorm(const float *x, const float *weight, int64_t rows, int64_t hidden,
             double eps, T *y);
/// x is f32, or bf16 (the stored activation, widened as it is read);
/// instantiated for both.
template <typename Stored>
void rmsNormGrad(const Stored *x, const float *weight, const float *dy,
                 int64_t rows, int64_t hidden, double eps, float *dx,
                 float *dWeight);

/// f32 or bf16 operands; an f32 result, or for bf16 operands without a
/// bias also a bf16 one (cuBLAS rounds the f32 accumulation as it stores).
template <typename Operand, typename Result>
void linear(const Operand *x, const Operand *weight, const float *bias,
            int64_t rows, int64_t in, int64_t out, Result *y);
template <typename Operand, typename Result>
void linearInputGrad(const Operand *dy, const Operand *weight, int64_t rows,
                     int64_t in, int64_t out, Result *dx);
void linearWeightGrad(const float *dy, const float *x, int64_t rows, int64_t in,
                      int64_t out, float *dWeight);
void linearWeightGrad(const bf16 *dy, const bf16 *x, int64_t rows, int64_t in,
                      int64_t out, float *dWeight);
void biasGrad(const float *dy, int64_t rows, int64_t out, float *dBias);

/// y is f32, or bf16 (the values rounded); instantiated for both.
template <typename T>
void rope(const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, bool inverse, T *y);

/// Layouts as CpuKernels.h's: lse is each query row's log-sum-exp
/// ([batch, heads, seq]), which attentionGrad reads with the forward's out.
/// f32 or bf16 operands; an f32 result, or for bf16 operands also a bf16 one
/// (the tensor-core kernel rounds the f32 result as it stores it).
template <typename Operand, typename Result>
void attention(const Operand *q, const Operand *k, const Operand *v,
               int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
               int64_t headDim, bool causal, Result *out, float *lse);
void attentionGrad(const float *q, const float *k, const float *v,
                   const float *out, const float *lse, const float *dOut,
                   int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
                   int64_t headDim, bool causal, float *dq, float *dk,
                   float *dv);
/// The largest head_dim of the attention kernels: f32 operands on CUDA
/// cores, bf16 operands on tensor cores (sm_80 and later). The CUDA target
/// refuses larger ones when it emits the calls.
constexpr int64_t kMaxAttentionHeadDim = 256;
constexpr int64_t kMaxBf16AttentionHeadDim = 128;
void attentionGrad(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *out,
                   const float *lse, const bf16 *dOut, int64_t batch,
                   int64_t seq, int64_t heads, int64_t kvHeads, int64_t headDim,
                   bool causal, float *dq, float *dk, float *dv);

void swiglu(const float *gate, const float *up, int64_t count, float *y);
void swigluGrad(const float *gate, const float *up, const float *dy,
                int64_t count, float *dGate, float *dUp);
void add(const float *a, const float *b, int64_t count, float *y);
void mul(const float *a, const float *b, int64_t count, float *y);

void crossEntropy(const float *logits, const int32_t *targets, int64_t rows,
                  int64_t vocab, const CountedTargets &counted, Divisor divisor,
                  float *result);
/// dLogits is f32, or bf16 (the values rounded); instantiated for both.
template <typename T>
void crossEntropyGrad(const float *logits, const int32_t *targets, int64_t rows,
                      int64_t vocab, const CountedTargets &counted,
                      Divisor divisor, const float *dLoss, T *dLogits);
void countTargets(const int32_t *targets, int64_t count,
                  const CountedTargets &counted, float *result);

//===----------------------------------------------------------------------===//
// Routing and experts. Buffers are [experts, capacity, hidden]; `counts`
// [experts] (device memory) holds the rows dispatch filled.
//===----------------------------------------------------------------------===//

void gate(const float *logits, int64_t tokens, int64_t experts,
          const GateConfig &config, float *probs, float *weights,
          int32_t *indices);
void gateGrad(const float *logits, const int32_t *indices, int64_t tokens,
              int64_t experts, const GateConfig &config, const float *dProbs,
              const float *dWeights, float *dLogits);
void gateNorm(const float *logits, int64_t tokens, int64_t experts,
              double lambda, double eps, float *y);
void gateNormGrad(const float *logits, const float *dy, int64_t tokens,
                  int64_t experts, double lambda, double eps, float *dLogits);

/// As moert::cpu::dispatch: rows past counts[e] are zero. The buffer is
/// f32, or bf16 (the rows rounded); instantiated for both.
template <typename T>
void dispatch(const float *tokens, const int32_t *indices,
              const float *priority, int64_t numTokens, int64_t hidden,
              int64_t topK, int64_t experts, int64_t capacity, T *buffer,
              int32_t *slots, int64_t *counts, int64_t *dropped);
void route(const int32_t *indices, const float *priority, int64_t numTokens,
           int64_t topK, int64_t experts, int64_t capacity, int64_t ranks,
           int32_t *slots, int64_t *counts, int64_t *dropped);
void place(const float *tokens, const int32_t *indices, const int32_t *slots,
           int64_t numTokens, int64_t hidden, int64_t topK, int64_t experts,
           int64_t capacity, float *buffer);
void dispatchGrad(const float *dBuffer, const int32_t *indices,
                  const int32_t *slots, int64_t numTokens, int64_t hidden,
                  int64_t topK, int64_t experts, int64_t capacity,
                  float *dTokens);
void mergeRuns(const float *runs, const int64_t *counts, int64_t ranks,
               int64_t experts, int64_t runCapacity, int64_t capacity,
               int64_t hidden, float *queue, int64_t *queueCounts);
void splitRuns(const float *queue, const int64_t *counts, int64_t ranks,
               int64_t experts, int64_t capacity, int64_t runCapacity,
               int64_t hidden, float *runs);

/// The experts' GEMMs are grouped GEMMs that read counts[e] on the device
/// and skip the tiles past each expert's rows, or, in bf16 with
/// MOE_CUDA_GROUPED_GEMM=cublas, compute whole capacities: x's and dy's
/// rows past the counts must then be finite (dispatch, place, merge_runs
/// and combineGrad make them zero), since the weight gradients multiply
/// them by zeros.
void expertFfn(const float *x, const float *gateProj, const float *upProj,
               const float *downProj, const int64_t *counts, int64_t experts,
               int64_t capacity, int64_t hidden, int64_t ffn, float *y,
               float *projections);
void expertFfnGrad(const float *x, const float *gateProj, const float *upProj,
                   const float *downProj, const float *projections,
                   const float *dy, const int64_t *counts, int64_t experts,
                   int64_t capacity, int64_t hidden, int64_t ffn, float *dx,
                   float *dGateProj, float *dUpProj, float *dDownProj);
void expertFfn(const bf16 *x, const bf16 *gateProj, const bf16 *upProj,
               const bf16 *downProj, const int64_t *counts, int64_t experts,
               int64_t capacity, int64_t hidden, int64_t ffn, float *y,
               bf16 *projections);
void expertFfnGrad(const bf16 *x, const bf16 *gateProj, const bf16 *upProj,
                   const bf16 *downProj, const bf16 *projections,
                   const bf16 *dy, const int64_t *counts, int64_t experts,
                   int64_t capacity, int64_t hidden, int64_t ffn, float *dx,
                   float *dGateProj, float *dUpProj, float *dDownProj);

void combine(const float *expertOutput, const float *weights,
             const int32_t *indices, const int32_t *slots, int64_t tokens,
             int64_t topK, int64_t experts, int64_t capacity, int64_t hidden,
             float *y);
/// Each of expertOutput (widened as it is read) and dExpertOutput (rounded
/// as it is stored) is f32 or bf16; instantiated for the four pairs.
template <typename Stored, typename Gradient>
void combineGrad(const Stored *expertOutput, const float *weights,
                 const int32_t *indices, const int32_t *slots, const float *dy,
                 int64_t tokens, int64_t topK, int64_t experts,
                 int64_t capacity, int64_t hidden, Gradient *dExpertOutput,
                 float *dWeights);

void auxLoss(AuxLossKind kind, const float *probs, const int32_t *indices,
             int64_t tokens, int64_t experts, int64_t topK, float *result);
void auxLossGrad(AuxLossKind kind, const float *probs, const int32_t *indices,
                 int64_t tokens, int64_t experts, int64_t topK,
                 const float *dLoss, float *dProbs);
void pooledAuxLoss(const float *const *probs, const int32_t *const *indices,
                   const int64_t *assignments, int64_t layers, int64_t experts,
                   int64_t topK, float *result);
void pooledAuxLossGrad(const int32_t *const *indices,
                       const int64_t *assignments, int64_t layers,
                       int64_t experts, int64_t topK, const float *dLoss,
                       float *const *dProbs);
void adaptiveAuxCoeff(const float *alpha, const int64_t *dropped,
                      int64_t assignments, double xi, double alphaMax,
                      double beta, float *result);
void zLoss(const float *logits, int64_t tokens, int64_t experts, float *result);
void zLossGrad(const float *logits, int64_t tokens, int64_t experts,
               const float *dLoss, float *dLogits);

void routingMetrics(const float *probs, const int32_t *indices,
                    const int32_t *slots, int64_t tokens, int64_t experts,
                    int64_t topK, float *dropRate, float *max1Max2,
                    float *max2Max3, int64_t *load);
void expertSimilarity(const float *gateProj, const float *upProj,
                      const float *downProj, int64_t experts, int64_t ffn,
                      int64_t hidden, float *result);

//===----------------------------------------------------------------------===//
// Optimizer.
//===----------------------------------------------------------------------===//

void lrSchedule(const int64_t *step, double maxLr, double minLr,
                int64_t warmupSteps, int64_t decaySteps, LrDecay decay,
                float *result);
void globalNorm(const float *const *tensors, const int64_t *sizes,
                int64_t count, float *result);
void addInt64(const int64_t *a, const int64_t *b, int64_t count, int64_t *y);
/// One AdamW step; the outputs may alias the inputs (element by element).
void adamw(const float *param, const float *grad, const float *expAvg,
           const float *expAvgSq, int64_t count, const float *lr,
           const float *gradNorm, const int64_t *step,
           const AdamWConfig &config, float *newParam, float *newExpAvg,
           float *newExpAvgSq);

//===----------------------------------------------------------------------===//
// Collectives (NCCL over the ranks of the grid axes named; see
// moert/Collectives.h for the semantics).
//===----------------------------------------------------------------------===//

void allGather(GridAxes axes, const float *local, int64_t count, float *whole);
void allGather(GridAxes axes, const int32_t *local, int64_t count,
               int32_t *whole);
void allGather(GridAxes axes, const int64_t *local, int64_t count,
               int64_t *whole);
void allReduceSum(GridAxes axes, const float *local, int64_t count, float *sum);
void allReduceSum(GridAxes axes, const int64_t *local, int64_t count,
                  int64_t *sum);
void reduceScatterSum(GridAxes axes, const float *local, int64_t count,
                      float *part);
void allToAll(GridAxes axes, const float *local, int64_t count,
              int64_t segmentRows, int64_t rowLength, float *received);
void allSlice(GridAxes axes, const float *whole, int64_t outer, int64_t count,
              float *part);
void allSlice(GridAxes axes, const int32_t *whole, int64_t outer, int64_t count,
              int32_t *part);
void allSlice(GridAxes axes, const int64_t *whole, int64_t outer, int64_t count,
              int64_t *part);

} // namespace moert::cuda

#endif // MOERT_CUDAKERNELS_H
