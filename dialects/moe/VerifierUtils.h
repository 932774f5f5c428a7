//===- VerifierUtils.h - checks shared by the moe verifiers -----*- C++ -*-===//
//
// Every check emits an op error that names the operand or attribute at fault
// and the value it expected.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_VERIFIERUTILS_H
#define MOE_DIALECT_VERIFIERUTILS_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"

#include <optional>

namespace mlir::moe::detail {

std::string formatShape(ArrayRef<int64_t> shape);
ArrayRef<int64_t> shapeOf(Value value);
/// The product of `shape`'s static sizes, or nullopt where int64 cannot
/// hold it (verifiers multiply sizes: a product must not wrap).
std::optional<int64_t> staticElementCount(ArrayRef<int64_t> shape);

/// Checks `value` has `rank` dimensions (`layout` names them in the
/// message) and a number of elements that int64 holds.
LogicalResult expectRank(Operation *op, StringRef name, Value value,
                         int64_t rank, StringRef layout);
LogicalResult expectShape(Operation *op, StringRef name, Value value,
                          ArrayRef<int64_t> expected);
/// Checks every named float value has the element type of the first one.
LogicalResult
expectSameElementType(Operation *op,
                      ArrayRef<std::pair<StringRef, Value>> namedValues);
/// A GEMM's element types: every one of `operands` has the first one's,
/// and every one of `accumulated` (results, a bias added to them) has
/// gemmResultType of it: f32 for bf16 operands, which accumulate in f32.
/// Over bf16 operands, the `narrowable` results may be bf16 too: the f32
/// accumulation rounded as it is stored (NarrowableResultOpInterface).
LogicalResult
verifyGemmElementTypes(Operation *op,
                       ArrayRef<std::pair<StringRef, Value>> operands,
                       ArrayRef<std::pair<StringRef, Value>> accumulated,
                       ArrayRef<std::pair<StringRef, Value>> narrowable = {});
/// A value that may be stored as bf16 where `reference` is f32: the
/// element type of `reference` or, for an f32 one, bf16. A result narrowed
/// by its op (NarrowableResultOpInterface, `reference` its source) or an
/// operand widened by its op (WidenableOperandOpInterface, `reference` a
/// value of the type the op computes in).
LogicalResult expectElementTypeOrBf16(Operation *op, StringRef referenceName,
                                      Value reference, StringRef name,
                                      Value value);
/// A NarrowableResultOpInterface result of its source's shape.
LogicalResult verifyNarrowableResult(Operation *op, StringRef sourceName,
                                     Value source, StringRef resultName,
                                     Value result);
LogicalResult expectPositive(Operation *op, StringRef name, double value);
LogicalResult expectNonNegative(Operation *op, StringRef name, double value);
SmallVector<int64_t> withLastDim(ArrayRef<int64_t> shape, int64_t last);

/// moe.slice and moe.pad: `narrow` is the window of `wide`'s last
/// dimension that starts at `offset`; the other dimensions and the element
/// types agree.
LogicalResult verifyLastDimWindow(Operation *op, StringRef wideName, Value wide,
                                  StringRef narrowName, Value narrow,
                                  int64_t offset);
/// moe.concat and its gradient: `lhs` and `rhs` side by side along the last
/// dimension are `result`, but for a second-to-last dimension of 1 in
/// either, read for each of the result's.
LogicalResult verifyConcatOperands(Operation *op, StringRef lhsName, Value lhs,
                                   StringRef rhsName, Value rhs,
                                   StringRef resultName, Value result);

/// moe.embedding and its gradient: a [vocab, hidden] table, rows of the
/// shape of `ids` followed by hidden, and a padding id within the vocabulary.
LogicalResult verifyEmbedding(Operation *op, StringRef tableName, Value table,
                              Value ids, StringRef rowsName, Value rows,
                              std::optional<int64_t> paddingId);
/// The operand checks of moe.rms_norm, shared with moe.rms_norm_grad: the
/// weight has the element type the op computes in, `computed`'s (the
/// input's, or the gradient's, whose input may be stored as bf16).
LogicalResult verifyRmsNormOperands(Operation *op, Value input, Value weight,
                                    double eps, StringRef computedName,
                                    Value computed);
/// moe.sigmoid_scale and its gradient: a logit per row of `input`, or per
/// element, of its element type.
LogicalResult verifySigmoidScaleOperands(Operation *op, Value input,
                                         Value logit);
/// moe.cross_entropy and its gradient; `scalar` is the loss or its gradient.
LogicalResult verifyCrossEntropyOperands(Operation *op, Value logits,
                                         Value targets, StringRef scalarName,
                                         Value scalar, Value divisor,
                                         std::optional<int64_t> ignoreIndex);
/// moe.pooled_aux_loss and its gradient: per layer, `probs` [T_l, n] and
/// `indices` [T_l, k], n and k the same for all; `scalar` is the loss or
/// its gradient.
LogicalResult verifyPooledAuxLossOperands(Operation *op, ValueRange probs,
                                          StringRef probsName,
                                          ValueRange indices,
                                          StringRef scalarName, Value scalar);
/// The operand checks of moe.attention, shared with moe.attention_grad.
LogicalResult verifyAttentionOperands(Operation *op, Value query, Value key);
/// Checks that `lse` has attentionLseType of `query` (after
/// verifyAttentionOperands).
LogicalResult verifyAttentionLse(Operation *op, Value query, Value lse);
/// Attention sinks are one logit per query head, in the type the scores
/// accumulate in (f32 over bf16 queries); a null `sinks` passes.
LogicalResult verifyAttentionSinks(Operation *op, Value query, Value sinks);
/// A sliding window bounds how far back a causal query sees: it needs
/// `causal`.
LogicalResult verifyAttentionWindow(Operation *op, bool causal,
                                    std::optional<uint64_t> window);
/// The operand checks of moe.expert_ffn, shared with moe.expert_ffn_grad;
/// `projections` is [experts, 2, capacity, ffn].
LogicalResult verifyExpertFfnOperands(Operation *op, Value input,
                                      Value gateProj, Value downProj,
                                      Value projections);
/// The shapes of moe.combine and its gradient: `rows` (the result or its
/// gradient) is [tokens, hidden] for weights/indices [tokens, top_k]. The
/// callers check the element types.
LogicalResult verifyCombineOperands(Operation *op, Value expertOutput,
                                    Value weights, Value indices,
                                    StringRef rowsName, Value rows);
/// moe.aux_loss and its gradient; `scalar` is the loss or its gradient.
LogicalResult verifyAuxLossOperands(Operation *op, Value probs, Value indices,
                                    StringRef scalarName, Value scalar);
/// moe.z_loss and its gradient; `scalar` is the loss or its gradient.
LogicalResult verifyZLossOperands(Operation *op, Value logits,
                                  StringRef scalarName, Value scalar);
/// The logit-normalization attributes of moe.gate, moe.gate_norm and their
/// gradients, whose `logits` [tokens, experts] the caller has checked.
LogicalResult verifyGateNormalization(Operation *op, FloatAttr lambda,
                                      double eps, Value logits);
/// moe.dispatch and moe.place: tokens [T, hidden] and indices and slots
/// [T, top_k] into a buffer [experts, capacity, hidden] (the callers check
/// its element type).
LogicalResult verifyPlacedTokens(Operation *op, Value tokens, Value indices,
                                 Value slots, Value buffer);
/// moe.dispatch and moe.route: the rows per expert that `factor` gives
/// (T when it is null: dropless), checking it and the optional priority
/// ([T, top_k], which needs a factor).
FailureOr<int64_t> verifyCapacity(Operation *op, FloatAttr factor,
                                  Value priority, int64_t tokens, int64_t topK,
                                  int64_t experts);
/// Routing indices [tokens, top_k] choose at least one expert a token.
LogicalResult expectChosenExperts(Operation *op, int64_t topK);
/// A token picks distinct experts, so top_k cannot exceed their number.
LogicalResult expectTopKAtMostExperts(Operation *op, StringRef name,
                                      int64_t topK, int64_t experts);

} // namespace mlir::moe::detail

#endif // MOE_DIALECT_VERIFIERUTILS_H
