//===- ReferenceKernels.h - naive semantics of every moe op -----*- C++ -*-===//
//
// One function per op of the moe dialect, written for clarity: they are the
// oracle that compiled code and transformations are tested against, and each
// follows the op's description in MoeOps.td (DESIGN.md section 2). Inputs are
// assumed verified (shapes agree); values that only run time can check (ids,
// indices) throw moert::Error. Results carry the element type of their
// primary input and are not yet rounded: the evaluator rounds them.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_REFERENCEKERNELS_H
#define MOE_INTERPRETER_REFERENCEKERNELS_H

#include "moe/Interpreter/Tensor.h"
#include "moert/KernelTypes.h"

#include <optional>

namespace mlir::moe::ref {

// Transformer ops.
Tensor embedding(const Tensor &table, const Tensor &ids);
Tensor rmsNorm(const Tensor &input, const Tensor &weight, double eps);
Tensor linear(const Tensor &input, const Tensor &weight, const Tensor *bias);
/// With `inverse`, rotates by the opposite angles: the transpose of the
/// rotation, which is rope's vector-Jacobian product.
/// Frequencies scale as `scaling` says, and the result by its
/// attentionFactor. Only the first `rotaryDim` of each head rotate (0: all),
/// as a head of rotaryDim would; the others pass. The pairs are (i, i +
/// rotaryDim / 2), or (2i, 2i + 1) where `interleaved`.
Tensor rope(const Tensor &input, double theta, bool inverse = false,
            const moert::RopeScaling &scaling = {}, int64_t rotaryDim = 0,
            bool interleaved = false);
struct AttentionResult {
  Tensor result;
  Tensor lse; // [batch, heads, seq]: each query row's log-sum-exp
};
/// `sinks` ([heads]): each head's sink logit; null: none.
AttentionResult attention(const Tensor &query, const Tensor &key,
                          const Tensor &value, moert::AttentionMask mask,
                          const Tensor *sinks = nullptr);
Tensor swiglu(const Tensor &gate, const Tensor &up);
/// Each row of `input` times the sigmoid of its row's `logit` ([..., 1]).
Tensor sigmoidScale(const Tensor &input, const Tensor &logit);
Tensor add(const Tensor &lhs, const Tensor &rhs);
Tensor mul(const Tensor &lhs, const Tensor &rhs);
Tensor scale(const Tensor &input, double factor);
/// moe.slice: the `size` elements of each row's last dimension from
/// `offset`.
Tensor slice(const Tensor &input, int64_t offset, int64_t size);
/// moe.pad: each row of `input` at `offset` of a row of `width`, zeros
/// elsewhere.
Tensor pad(const Tensor &input, int64_t offset, int64_t width);
/// moe.concat into a result of `shape`.
Tensor concat(const Tensor &lhs, const Tensor &rhs,
              const std::vector<int64_t> &shape);
/// Which positions a cross-entropy counts (those whose target is not
/// `ignoreIndex`) and what divides their losses' sum (`divisor`, 0 giving
/// 0; without one, the mean over all positions).
struct LossTargets {
  std::optional<int64_t> ignoreIndex;
  std::optional<double> divisor;
};
Tensor crossEntropy(const Tensor &logits, const Tensor &targets,
                    const LossTargets &counted = {});
/// moe.count_targets: the number of targets other than `ignoreIndex`.
Tensor countTargets(const Tensor &targets, std::optional<int64_t> ignoreIndex,
                    moert::DType dtype);

// Routing and experts.
struct GateResult {
  Tensor probs;   // [T, E]
  Tensor weights; // [T, k]
  Tensor indices; // [T, k], i32
};
/// moe.gate; `bias` ([E]) is null without one; `groups`, `groupTopK` and
/// `groupScoreTop`, DeepSeek's group-limited routing (1 and 1: none).
GateResult gate(const Tensor &logits, int64_t topK,
                std::optional<double> normLambda, double normEps,
                bool renormalize,
                moert::GateScoring scoring = moert::GateScoring::Softmax,
                const Tensor *bias = nullptr, double scale = 1,
                int64_t groups = 1, int64_t groupTopK = 1,
                int64_t groupScoreTop = 2);
/// The gate's logit normalization alone (moe.gate_norm): per row,
/// normLambda (z - mean) / (std + normEps), with the population std.
Tensor gateNorm(const Tensor &logits, double normLambda, double normEps);

struct DispatchResult {
  Tensor buffer;  // [E, capacity, D]
  Tensor slots;   // [T, k], i32, -1 where dropped
  Tensor dropped; // scalar i64
};
/// With `priority` ([T, k]), an expert over capacity keeps its assignments
/// of highest priority (ties to the earlier one) rather than the first to
/// arrive; either way the kept ones take rows in token-major order.
DispatchResult dispatch(const Tensor &tokens, const Tensor &indices,
                        int64_t numExperts, int64_t capacity,
                        const Tensor *priority = nullptr);
/// moe.route: dispatch's decisions without the tokens; slots within the
/// runs of `ranks` equal parts of the tokens.
struct RouteResult {
  Tensor slots;   // [T, k], i32, -1 where dropped
  Tensor counts;  // [ranks, E], i64, each part's kept assignments per expert
  Tensor dropped; // scalar i64
};
RouteResult route(const Tensor &indices, int64_t numExperts, int64_t capacity,
                  const Tensor *priority = nullptr, int64_t ranks = 1);
/// moe.merge_runs: [ranks * E, run_capacity, D] runs into [E, capacity, D].
Tensor mergeRuns(const Tensor &runs, const Tensor &counts, int64_t capacity);
/// moe.split_runs: the inverse, [E, capacity, D] into runs of `runCapacity`.
Tensor splitRuns(const Tensor &queue, const Tensor &counts,
                 int64_t runCapacity);
/// moe.place: every kept token in its row of [E, capacity, D], zeros
/// elsewhere.
Tensor place(const Tensor &tokens, const Tensor &indices, const Tensor &slots,
             int64_t numExperts, int64_t capacity);
Tensor expertFfn(const Tensor &input, const Tensor &gateProj,
                 const Tensor &upProj, const Tensor &downProj);
/// moe.expert_ffn's `projections`: [experts, 2, capacity, ffn], the gate
/// then the up projection of every row, rounded to the input's precision
/// (bf16 operands keep bf16 projections); expertFfn computes from them.
Tensor expertProjections(const Tensor &input, const Tensor &gateProj,
                         const Tensor &upProj);
Tensor combine(const Tensor &expertOutput, const Tensor &weights,
               const Tensor &indices, const Tensor &slots);

// Auxiliary losses and their coefficients.
enum class AuxLossKind { Skywork, Switch };
Tensor auxLoss(AuxLossKind kind, const Tensor &probs, const Tensor &indices);
/// moe.pooled_aux_loss: one [T_l, n] probs and [T_l, k] indices per layer.
Tensor pooledAuxLoss(const std::vector<const Tensor *> &probs,
                     const std::vector<const Tensor *> &indices);
Tensor zLoss(const Tensor &logits);
Tensor adaptiveAuxCoeff(const Tensor &alpha, const Tensor &dropped, double xi,
                        double alphaMax, double beta, int64_t assignments);
/// moe.expert_load: how many of `indices` ([T, k]) chose each of `experts`.
Tensor expertLoad(const Tensor &indices, int64_t experts);
/// moe.expert_bias_update: bias + rate * sign(mean(load) - load).
Tensor expertBiasUpdate(const Tensor &bias, const Tensor &load, double rate);

// Metrics. Their ops do not tie the float results' type to the inputs', so
// the caller passes it.
struct RoutingMetrics {
  Tensor dropRate, max1Max2, max2Max3; // scalars
  Tensor load;                         // [n], i64
};
RoutingMetrics routingMetrics(const Tensor &probs, const Tensor &indices,
                              const Tensor &slots, DType metricType);
Tensor expertSimilarity(const Tensor &gateProj, const Tensor &upProj,
                        const Tensor &downProj, DType resultType);

} // namespace mlir::moe::ref

#endif // MOE_INTERPRETER_REFERENCEKERNELS_H
