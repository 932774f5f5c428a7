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

/// A divisor that is either a 0-d tensor on the device or a constant.
struct Divisor {
  Divisor(const float *device) : device(device) {}
  Divisor(double value) : value(value) {}
  const float *device = nullptr;
  double value = 0;
};

/// The largest head_dim of the attention kernels: f32 operands on CUDA
/// cores, bf16 operands on tensor cores (sm_80 and later). The CUDA target
/// refuses larger ones when it emits the calls.
constexpr int64_t kMaxAttentionHeadDim = 256;
constexpr int64_t kMaxBf16AttentionHeadDim = 128;

// expertFfn's and expertFfnGrad's GEMMs are grouped GEMMs that read counts[e]
// on the device and skip the tiles past each expert's rows, or, in bf16 with
// MOE_CUDA_GROUPED_GEMM=cublas, compute whole capacities: x's and dy's
// rows past the counts must then be finite (dispatch, place, merge_runs
// and combineGrad make them zero), since the weight gradients multiply
// them by zeros.

//===----------------------------------------------------------------------===//
// Kernels whose CPU counterparts differ in signature: a 0-d operand is read
// and a 0-d result written through a device pointer.
//===----------------------------------------------------------------------===//

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
/// One AdamW step; the outputs may alias the inputs (element by element).
void adamw(const float *param, const float *grad, const float *expAvg,
           const float *expAvgSq, int64_t count, const float *lr,
           const float *gradNorm, const int64_t *step,
           const AdamWConfig &config, float *newParam, float *newExpAvg,
           float *newExpAvgSq);

//===----------------------------------------------------------------------===//
// Collectives (NCCL over the ranks of the grid axes named).
//===----------------------------------------------------------------------===//

#include "moert/TargetCollectives.inc"

} // namespace moert::cuda

#endif // MOERT_CUDAKERNELS_H
