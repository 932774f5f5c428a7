//===- CpuKernels.h - f32 CPU kernels of the compiled model -----*- C++ -*-===//
//
// The kernels that generated C++ calls, one per moe op (forward, backward and
// optimizer), on f32 row-major buffers. GEMMs go to oneDNN (Gemm.h), loops
// are parallelized with OpenMP; reductions use a fixed order for a given
// thread count, so a run is reproducible. Semantics are exactly those
// of the reference kernels (include/moe/Interpreter/*Kernels.h), which the
// unit tests compare against. Shapes are passed as sizes; integer inputs
// that only run time can check (ids, targets, indices) throw moert::Error.
// Output buffers need not be initialized: every kernel writes all of its
// outputs. The GEMM kernels also take bf16 operands (mixed precision): they
// accumulate in f32 and return f32, and round the intermediates that feed
// their next GEMM (the experts' activations and gradients, attention's
// probabilities and scores' gradients) to bf16.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPUKERNELS_H
#define MOERT_CPUKERNELS_H

#include "moert/Bf16.h"
#include "moert/KernelTypes.h"

#include <cstdint>

namespace moert::cpu {

using moert::AdamWConfig;
using moert::AuxLossKind;
using moert::CountedTargets;
using moert::GateConfig;
using moert::GridAxes;
using moert::LrDecay;

/// arith.truncf (f32 to bf16, to nearest even) and arith.extf (exact).
void convert(const float *x, int64_t count, bf16 *y);
void convert(const bf16 *x, int64_t count, float *y);

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

/// y[rows, out] = x[rows, in] weight[out, in]^T (+ bias[out]). The
/// operands are f32, or bf16 (accumulated in f32); the result is f32, or
/// for bf16 operands without a bias also bf16 (the f32 result rounded).
/// Instantiated for those three.
template <typename Operand, typename Result>
void linear(const Operand *x, const Operand *weight, const float *bias,
            int64_t rows, int64_t in, int64_t out, Result *y);
/// dx[rows, in] = dy[rows, out] weight[out, in], with linear's types.
template <typename Operand, typename Result>
void linearInputGrad(const Operand *dy, const Operand *weight, int64_t rows,
                     int64_t in, int64_t out, Result *dx);
/// dWeight[out, in] = dy[rows, out]^T x[rows, in].
void linearWeightGrad(const float *dy, const float *x, int64_t rows, int64_t in,
                      int64_t out, float *dWeight);
void linearWeightGrad(const bf16 *dy, const bf16 *x, int64_t rows, int64_t in,
                      int64_t out, float *dWeight);
/// dBias[out] = sum over rows of dy[rows, out].
void biasGrad(const float *dy, int64_t rows, int64_t out, float *dBias);

/// x, y: [batch, seq, heads, headDim]; y is f32, or bf16 (the f32 result
/// rounded, a narrowed result of moe-narrow-results); instantiated for both.
template <typename T>
void rope(const float *x, int64_t batch, int64_t seq, int64_t heads,
          int64_t headDim, double theta, bool inverse, T *y);

/// q, out: [batch, seq, heads, headDim]; k, v: [batch, seq, kvHeads, headDim];
/// lse: [batch, heads, seq], each query row's log-sum-exp of its scaled
/// scores, which the gradient reads with the forward's `out`.
/// f32 or bf16 operands; an f32 result, or for bf16 operands also a bf16 one
/// (the f32 result rounded). Instantiated for those three.
template <typename Operand, typename Result>
void attention(const Operand *q, const Operand *k, const Operand *v,
               int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
               int64_t headDim, bool causal, Result *out, float *lse);
void attentionGrad(const float *q, const float *k, const float *v,
                   const float *out, const float *lse, const float *dOut,
                   int64_t batch, int64_t seq, int64_t heads, int64_t kvHeads,
                   int64_t headDim, bool causal, float *dq, float *dk,
                   float *dv);
void attentionGrad(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *out,
                   const float *lse, const bf16 *dOut, int64_t batch,
                   int64_t seq, int64_t heads, int64_t kvHeads, int64_t headDim,
                   bool causal, float *dq, float *dk, float *dv);

void swiglu(const float *gate, const float *up, int64_t count, float *y);
void swigluGrad(const float *gate, const float *up, const float *dy,
                int64_t count, float *dGate, float *dUp);
void add(const float *a, const float *b, int64_t count, float *y);
void mul(const float *a, const float *b, int64_t count, float *y);

/// The sum over counted rows of logsumexp(logits[r]) - logits[r, targets[r]]
/// over `divisor` (0 gives 0).
float crossEntropy(const float *logits, const int32_t *targets, int64_t rows,
                   int64_t vocab, const CountedTargets &counted,
                   double divisor);
/// dLogits is f32, or bf16 (the values rounded); instantiated for both.
template <typename T>
void crossEntropyGrad(const float *logits, const int32_t *targets, int64_t rows,
                      int64_t vocab, const CountedTargets &counted,
                      double divisor, float dLoss, T *dLogits);
/// The number of counted targets (moe.count_targets).
float countTargets(const int32_t *targets, int64_t count,
                   const CountedTargets &counted);

//===----------------------------------------------------------------------===//
// Routing and experts. Buffers are [experts, capacity, hidden]; `counts`
// [experts] holds the rows dispatch filled, so expert kernels skip the rest.
//===----------------------------------------------------------------------===//

void gate(const float *logits, int64_t tokens, int64_t experts,
          const GateConfig &config, float *probs, float *weights,
          int32_t *indices);
void gateGrad(const float *logits, const int32_t *indices, int64_t tokens,
              int64_t experts, const GateConfig &config, const float *dProbs,
              const float *dWeights, float *dLogits);

/// The gate's logit normalization alone (moe.gate_norm): per row of
/// logits [tokens, experts], y = lambda (z - mean) / (std + eps).
void gateNorm(const float *logits, int64_t tokens, int64_t experts,
              double lambda, double eps, float *y);
void gateNormGrad(const float *logits, const float *dy, int64_t tokens,
                  int64_t experts, double lambda, double eps, float *dLogits);

/// Fills buffer rows in token-major order; slots[t, c] = row or -1 (dropped);
/// counts[e] = rows filled; *dropped = dropped assignments. Rows past
/// counts[e] are zero (moe.dispatch's unused rows). An expert over capacity
/// keeps its first assignments, or with `priority` ([tokens, topK]; may be
/// null) those of highest priority, ties going to the earlier one. The buffer
/// is f32, or bf16 holding the rows rounded (a narrowed result,
/// moe-narrow-results); instantiated for both.
template <typename T>
void dispatch(const float *tokens, const int32_t *indices,
              const float *priority, int64_t numTokens, int64_t hidden,
              int64_t topK, int64_t experts, int64_t capacity, T *buffer,
              int32_t *slots, int64_t *counts, int64_t *dropped);
/// dispatch's decisions alone (moe.route): slots within the runs of `ranks`
/// equal parts of the tokens, the runs' lengths (`counts`, [ranks,
/// experts]) and the dropped count.
void route(const int32_t *indices, const float *priority, int64_t numTokens,
           int64_t topK, int64_t experts, int64_t capacity, int64_t ranks,
           int32_t *slots, int64_t *counts, int64_t *dropped);
/// dispatch's rows alone (moe.place): every kept token at its given row,
/// every other row zero.
void place(const float *tokens, const int32_t *indices, const int32_t *slots,
           int64_t numTokens, int64_t hidden, int64_t topK, int64_t experts,
           int64_t capacity, float *buffer);
void dispatchGrad(const float *dBuffer, const int32_t *indices,
                  const int32_t *slots, int64_t numTokens, int64_t hidden,
                  int64_t topK, int64_t experts, int64_t capacity,
                  float *dTokens);

/// moe.merge_runs: block p * experts + e of `runs` ([ranks * experts,
/// runCapacity, hidden]) holds rank p's run of counts[p, e] rows for expert
/// e; `queue` ([experts, capacity, hidden]) gets each expert's runs in rank
/// order and zeros after them, `queueCounts` each expert's filled rows.
void mergeRuns(const float *runs, const int64_t *counts, int64_t ranks,
               int64_t experts, int64_t runCapacity, int64_t capacity,
               int64_t hidden, float *queue, int64_t *queueCounts);
/// moe.split_runs: the inverse of mergeRuns, zeros after each run.
void splitRuns(const float *queue, const int64_t *counts, int64_t ranks,
               int64_t experts, int64_t capacity, int64_t runCapacity,
               int64_t hidden, float *runs);

/// SwiGLU FFN per expert on its first counts[e] rows: gateProj, upProj
/// [experts, ffn, hidden], downProj [experts, hidden, ffn]. projections
/// [experts, 2, capacity, ffn] receives x Wg^T and x Wu^T for the backward.
/// Rows past counts[e] of y and projections are left unwritten.
/// The operands x and projections are of type T: f32, or bf16 (the GEMMs
/// accumulate in f32, the projections are kept in bf16). The weights are
/// of type W: T, or f32 with bf16 T (moe-mixed-precision
/// weight-copies=per-expert), rounded to bf16 an expert at a time as its
/// GEMMs read them, the values a bf16 copy of the weights would hold.
/// Instantiated for (f32, f32), (bf16, bf16) and (bf16, f32).
template <typename T, typename W>
void expertFfn(const T *x, const W *gateProj, const W *upProj,
               const W *downProj, const int64_t *counts, int64_t experts,
               int64_t capacity, int64_t hidden, int64_t ffn, float *y,
               T *projections);
/// From the forward's projections; dx rows past counts[e] are left
/// unwritten; the weight gradients are complete.
template <typename T, typename W>
void expertFfnGrad(const T *x, const W *gateProj, const W *upProj,
                   const W *downProj, const T *projections, const T *dy,
                   const int64_t *counts, int64_t experts, int64_t capacity,
                   int64_t hidden, int64_t ffn, float *dx, float *dGateProj,
                   float *dUpProj, float *dDownProj);

void combine(const float *expertOutput, const float *weights,
             const int32_t *indices, const int32_t *slots, int64_t tokens,
             int64_t topK, int64_t experts, int64_t capacity, int64_t hidden,
             float *y);
/// dExpertOutput rows that no kept assignment reads are zero. Each of
/// expertOutput (the stored activation, widened as it is read) and
/// dExpertOutput (the values rounded as they are stored) is f32 or bf16;
/// instantiated for the four pairs.
template <typename Stored, typename Gradient>
void combineGrad(const Stored *expertOutput, const float *weights,
                 const int32_t *indices, const int32_t *slots, const float *dy,
                 int64_t tokens, int64_t topK, int64_t experts,
                 int64_t capacity, int64_t hidden, Gradient *dExpertOutput,
                 float *dWeights);

float auxLoss(AuxLossKind kind, const float *probs, const int32_t *indices,
              int64_t tokens, int64_t experts, int64_t topK);
void auxLossGrad(AuxLossKind kind, const float *probs, const int32_t *indices,
                 int64_t tokens, int64_t experts, int64_t topK, float dLoss,
                 float *dProbs);
/// moe.pooled_aux_loss over `layers` layers: probs[l] [tokens, experts] and
/// indices[l] [tokens, topK], tokens = assignments[l] / topK.
float pooledAuxLoss(const float *const *probs, const int32_t *const *indices,
                    const int64_t *assignments, int64_t layers, int64_t experts,
                    int64_t topK);
void pooledAuxLossGrad(const int32_t *const *indices,
                       const int64_t *assignments, int64_t layers,
                       int64_t experts, int64_t topK, float dLoss,
                       float *const *dProbs);
/// Skywork-MoE's adaptive coefficient after a step that dropped `dropped`
/// of `assignments` assignments: beta alpha + (1 - beta) min(xi d, alphaMax).
float adaptiveAuxCoeff(float alpha, int64_t dropped, int64_t assignments,
                       double xi, double alphaMax, double beta);
float zLoss(const float *logits, int64_t tokens, int64_t experts);
void zLossGrad(const float *logits, int64_t tokens, int64_t experts,
               float dLoss, float *dLogits);

/// moe.routing_metrics: the drop rate, the means of p(1)/p(2) and p(2)/p(3)
/// over tokens (experts >= 3), and load[experts], the kept assignments.
void routingMetrics(const float *probs, const int32_t *indices,
                    const int32_t *slots, int64_t tokens, int64_t experts,
                    int64_t topK, float *dropRate, float *max1Max2,
                    float *max2Max3, int64_t *load);
/// The mean pairwise cosine similarity of the experts' parameters (shapes as
/// in expertFfn, experts >= 2).
float expertSimilarity(const float *gateProj, const float *upProj,
                       const float *downProj, int64_t experts, int64_t ffn,
                       int64_t hidden);

//===----------------------------------------------------------------------===//
// Optimizer.
//===----------------------------------------------------------------------===//

float lrSchedule(int64_t step, double maxLr, double minLr, int64_t warmupSteps,
                 int64_t decaySteps, LrDecay decay);
/// sqrt of the sum of squares of `count` tensors of `sizes[i]` elements.
float globalNorm(const float *const *tensors, const int64_t *sizes,
                 int64_t count);

/// y = a + b on `count` integers (the step counter); y may alias a.
void addInt64(const int64_t *a, const int64_t *b, int64_t count, int64_t *y);

/// One AdamW step; the outputs may alias the inputs (element by element).
void adamw(const float *param, const float *grad, const float *expAvg,
           const float *expAvgSq, int64_t count, float lr, float gradNorm,
           int64_t step, const AdamWConfig &config, float *newParam,
           float *newExpAvg, float *newExpAvgSq);

} // namespace moert::cpu

#endif // MOERT_CPUKERNELS_H
