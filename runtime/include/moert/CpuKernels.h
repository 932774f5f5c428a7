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
// outputs. The kernels whose signatures the CUDA target shares are declared
// in TargetKernels.inc. The GEMM kernels also take bf16 operands (mixed
// precision): they accumulate in f32 and return f32, and round the
// intermediates that feed their next GEMM (the experts' activations and
// gradients, attention's probabilities and scores' gradients) to bf16.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPUKERNELS_H
#define MOERT_CPUKERNELS_H

#include "moert/Bf16.h"
#include "moert/KernelTypes.h"

#include <cstdint>

namespace moert::cpu {

using moert::AdamWConfig;
using moert::AttentionMask;
using moert::AuxLossKind;
using moert::CountedTargets;
using moert::GateConfig;
using moert::GateScoring;
using moert::GridAxes;
using moert::LrDecay;
using moert::RopeKind;
using moert::RopeScaling;

#include "moert/TargetKernels.inc"

//===----------------------------------------------------------------------===//
// Kernels whose CUDA counterparts differ in signature: a 0-d result is
// returned here, written through a device pointer there.
//===----------------------------------------------------------------------===//

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

/// One AdamW step; the outputs may alias the inputs (element by element).
void adamw(const float *param, const float *grad, const float *expAvg,
           const float *expAvgSq, int64_t count, float lr, float gradNorm,
           int64_t step, const AdamWConfig &config, float *newParam,
           float *newExpAvg, float *newExpAvgSq);

} // namespace moert::cpu

#endif // MOERT_CPUKERNELS_H
