//===- VerifierUtils.cpp - checks shared by the moe verifiers -------------===//

#include "VerifierUtils.h"
#include "moe/MoeDialect.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>

using namespace mlir;

namespace mlir::moe::detail {

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  llvm::raw_string_ostream os(text);
  llvm::interleaveComma(shape, os);
  os << "]";
  return text;
}

ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

std::optional<int64_t> staticElementCount(ArrayRef<int64_t> shape) {
  int64_t elements = 1;
  for (int64_t size : shape)
    if (!ShapedType::isDynamic(size) &&
        llvm::MulOverflow(elements, size, elements))
      return std::nullopt;
  return elements;
}

LogicalResult expectRank(Operation *op, StringRef name, Value value,
                         int64_t rank, StringRef layout) {
  int64_t actual = shapeOf(value).size();
  if (actual != rank)
    return op->emitOpError() << "'" << name << "' must have rank " << rank
                             << " (" << layout << "), got rank " << actual;
  if (!staticElementCount(shapeOf(value)))
    return op->emitOpError()
           << "'" << name << "' of shape " << formatShape(shapeOf(value))
           << " has more elements than an int64 holds";
  return success();
}

LogicalResult expectShape(Operation *op, StringRef name, Value value,
                          ArrayRef<int64_t> expected) {
  if (shapeOf(value) == expected)
    return success();
  return op->emitOpError() << "'" << name << "' must have shape "
                           << formatShape(expected) << ", got "
                           << formatShape(shapeOf(value));
}

LogicalResult verifyNarrowableResult(Operation *op, StringRef sourceName,
                                     Value source, StringRef resultName,
                                     Value result) {
  if (failed(expectShape(op, resultName, result, shapeOf(source))))
    return failure();
  return expectElementTypeOrBf16(op, sourceName, source, resultName, result);
}

LogicalResult expectElementTypeOrBf16(Operation *op, StringRef referenceName,
                                      Value reference, StringRef name,
                                      Value value) {
  Type expected = getElementTypeOrSelf(reference),
       actual = getElementTypeOrSelf(value);
  if (actual == expected || (expected.isF32() && actual.isBF16()))
    return success();
  return op->emitOpError() << "'" << name << "' must have the element type of '"
                           << referenceName << "' (" << expected << ")"
                           << (expected.isF32() ? " or bf16" : "") << ", got "
                           << actual;
}

/// Checks every named float value has the element type of the first one.
LogicalResult
expectSameElementType(Operation *op,
                      ArrayRef<std::pair<StringRef, Value>> namedValues) {
  Type expected = getElementTypeOrSelf(namedValues.front().second);
  for (auto [name, value] : namedValues.drop_front()) {
    Type actual = getElementTypeOrSelf(value);
    if (actual != expected)
      return op->emitOpError()
             << "'" << name << "' must have element type " << expected
             << " (that of '" << namedValues.front().first << "'), got "
             << actual;
  }
  return success();
}

LogicalResult
verifyGemmElementTypes(Operation *op,
                       ArrayRef<std::pair<StringRef, Value>> operands,
                       ArrayRef<std::pair<StringRef, Value>> accumulated,
                       ArrayRef<std::pair<StringRef, Value>> narrowable) {
  if (failed(expectSameElementType(op, operands)))
    return failure();
  Type operandType = getElementTypeOrSelf(operands.front().second);
  Type expected = gemmResultType(operandType);
  auto check = [&](StringRef name, Value value,
                   bool mayBeNarrowed) -> LogicalResult {
    Type actual = getElementTypeOrSelf(value);
    bool narrowed = mayBeNarrowed && operandType.isBF16() && actual.isBF16();
    if (actual == expected || narrowed)
      return success();
    InFlightDiagnostic error = op->emitOpError()
                               << "'" << name << "' must have element type "
                               << expected;
    if (expected == operandType)
      return error << " (that of '" << operands.front().first << "'), got "
                   << actual;
    error << " (a GEMM over " << operandType << " '" << operands.front().first
          << "' accumulates in " << expected << ")";
    if (mayBeNarrowed)
      error << " or " << operandType << " (the accumulation rounded)";
    return error << ", got " << actual;
  };
  for (auto [name, value] : accumulated)
    if (failed(check(name, value, /*mayBeNarrowed=*/false)))
      return failure();
  for (auto [name, value] : narrowable)
    if (failed(check(name, value, /*mayBeNarrowed=*/true)))
      return failure();
  return success();
}

LogicalResult expectPositive(Operation *op, StringRef name, double value) {
  if (value > 0 && std::isfinite(value))
    return success();
  return op->emitOpError() << "attribute '" << name
                           << "' must be a positive finite number, got "
                           << value;
}

LogicalResult expectNonNegative(Operation *op, StringRef name, double value) {
  if (value >= 0 && std::isfinite(value))
    return success();
  return op->emitOpError() << "attribute '" << name
                           << "' must be a non-negative finite number, got "
                           << value;
}

SmallVector<int64_t> withLastDim(ArrayRef<int64_t> shape, int64_t last) {
  SmallVector<int64_t> result(shape.drop_back());
  result.push_back(last);
  return result;
}

LogicalResult verifyEmbedding(Operation *op, StringRef tableName, Value table,
                              Value ids, StringRef rowsName, Value rows,
                              std::optional<int64_t> paddingId) {
  if (failed(expectRank(op, tableName, table, 2, "[vocab, hidden]")))
    return failure();
  SmallVector<int64_t> expected(shapeOf(ids));
  expected.push_back(shapeOf(table)[1]);
  if (failed(expectShape(op, rowsName, rows, expected)))
    return failure();
  int64_t vocab = shapeOf(table)[0];
  if (paddingId && (*paddingId < 0 || *paddingId >= vocab))
    return op->emitOpError()
           << "padding_id " << *paddingId << " is outside the vocabulary [0, "
           << vocab << ")";
  return expectSameElementType(op, {{tableName, table}, {rowsName, rows}});
}

LogicalResult verifyRmsNormOperands(Operation *op, Value input, Value weight,
                                    double eps, StringRef computedName,
                                    Value computed) {
  ArrayRef<int64_t> shape = shapeOf(input);
  if (shape.empty())
    return op->emitOpError("'input' must have rank >= 1");
  if (failed(expectShape(op, "weight", weight, {shape.back()})) ||
      failed(expectSameElementType(
          op, {{computedName, computed}, {"weight", weight}})))
    return failure();
  return expectPositive(op, "eps", eps);
}

LogicalResult verifyLastDimWindow(Operation *op, StringRef wideName, Value wide,
                                  StringRef narrowName, Value narrow,
                                  int64_t offset) {
  ArrayRef<int64_t> wideShape = shapeOf(wide), narrowShape = shapeOf(narrow);
  if (wideShape.empty())
    return op->emitOpError() << "'" << wideName << "' must have rank >= 1";
  if (narrowShape.size() != wideShape.size() ||
      narrowShape.drop_back() != wideShape.drop_back())
    return op->emitOpError()
           << "'" << narrowName << "' must have the shape of '" << wideName
           << "' " << formatShape(wideShape)
           << " but for its last dimension, got " << formatShape(narrowShape);
  if (narrowShape.back() == 0 || offset > wideShape.back() - narrowShape.back())
    return op->emitOpError()
           << "'" << narrowName << "' must be a non-empty window of the "
           << wideShape.back() << " elements of '" << wideName
           << "''s last dimension, got " << narrowShape.back()
           << " from offset " << offset;
  return expectSameElementType(op, {{wideName, wide}, {narrowName, narrow}});
}

LogicalResult verifyConcatOperands(Operation *op, StringRef lhsName, Value lhs,
                                   StringRef rhsName, Value rhs,
                                   StringRef resultName, Value result) {
  ArrayRef<int64_t> shape = shapeOf(result);
  if (shape.empty())
    return op->emitOpError() << "'" << resultName << "' must have rank >= 1";
  int64_t widths = 0;
  for (auto [name, part] : {std::pair{lhsName, lhs}, std::pair{rhsName, rhs}}) {
    ArrayRef<int64_t> partShape = shapeOf(part);
    bool agrees = partShape.size() == shape.size();
    for (size_t axis = 0; agrees && axis + 1 < shape.size(); ++axis)
      agrees = partShape[axis] == shape[axis] ||
               (axis + 2 == shape.size() && partShape[axis] == 1);
    if (!agrees)
      return op->emitOpError()
             << "'" << name << "' must have the shape of '" << resultName
             << "' " << formatShape(shape)
             << " but for its last dimension (and a second-to-last of 1), got "
             << formatShape(partShape);
    widths += partShape.back();
  }
  if (widths != shape.back())
    return op->emitOpError()
           << "'" << resultName << "''s last dimension must be the sum of '"
           << lhsName << "''s and '" << rhsName << "''s, " << widths << ", got "
           << shape.back();
  return expectSameElementType(
      op, {{resultName, result}, {lhsName, lhs}, {rhsName, rhs}});
}

LogicalResult verifySigmoidScaleOperands(Operation *op, Value input,
                                         Value logit) {
  ArrayRef<int64_t> shape = shapeOf(input);
  if (shape.empty())
    return op->emitOpError("'input' must have rank >= 1");
  // A logit a row, or an element.
  SmallVector<int64_t> perRow = withLastDim(shape, 1);
  if (shapeOf(logit) != ArrayRef<int64_t>(perRow) && shapeOf(logit) != shape)
    return op->emitOpError()
           << "'logit' must have shape " << formatShape(perRow)
           << " (a gate a row) or " << formatShape(shape)
           << " (a gate an element), got " << formatShape(shapeOf(logit));
  return expectSameElementType(op, {{"input", input}, {"logit", logit}});
}

LogicalResult verifyCrossEntropyOperands(Operation *op, Value logits,
                                         Value targets, StringRef scalarName,
                                         Value scalar, Value divisor,
                                         std::optional<int64_t> ignoreIndex) {
  ArrayRef<int64_t> shape = shapeOf(logits);
  if (shape.empty())
    return op->emitOpError("'logits' must have rank >= 1 ([..., vocab])");
  if (failed(expectShape(op, "targets", targets, shape.drop_back())))
    return failure();
  // Without a divisor the kernel would have to count the targets itself,
  // and a rank of an expert-parallel program would divide by its own count.
  if (ignoreIndex && !divisor)
    return op->emitOpError("'ignore_index' needs a 'divisor' (the number of "
                           "counted targets, from moe.count_targets)");
  if (divisor && failed(expectSameElementType(
                     op, {{"logits", logits}, {"divisor", divisor}})))
    return failure();
  return expectSameElementType(op, {{"logits", logits}, {scalarName, scalar}});
}

LogicalResult verifyAttentionOperands(Operation *op, Value query, Value key) {
  if (failed(
          expectRank(op, "query", query, 4, "[batch, seq, heads, head_dim]")) ||
      failed(expectRank(op, "key", key, 4, "[batch, seq, kv_heads, head_dim]")))
    return failure();
  ArrayRef<int64_t> q = shapeOf(query), k = shapeOf(key);
  int64_t kvHeads = k[2];
  if (kvHeads <= 0 || q[2] % kvHeads != 0)
    return op->emitOpError()
           << "'key' kv_heads (" << kvHeads << ") must divide the query heads ("
           << q[2] << ")";
  if (failed(expectShape(op, "key", key, {q[0], q[1], kvHeads, q[3]})))
    return failure();
  // The scores are scaled by 1 / sqrt(head_dim).
  if (q[3] <= 0)
    return op->emitOpError()
           << "'query' head_dim must be positive, got " << q[3];
  return expectSameElementType(op, {{"query", query}, {"key", key}});
}

LogicalResult verifyAttentionLse(Operation *op, Value query, Value lse) {
  Type expected = attentionLseType(query.getType());
  if (lse.getType() != expected)
    return op->emitOpError()
           << "'lse' must be " << expected
           << " ([batch, heads, seq] of the query's), got " << lse.getType();
  return success();
}

LogicalResult verifyAttentionSinks(Operation *op, Value query, Value sinks) {
  if (!sinks)
    return success();
  if (failed(expectRank(op, "sinks", sinks, 1, "[heads]")) ||
      failed(expectShape(op, "sinks", sinks, {shapeOf(query)[2]})))
    return failure();
  return verifyGemmElementTypes(op, {{"query", query}}, {{"sinks", sinks}});
}

LogicalResult verifyAttentionWindow(Operation *op, bool causal,
                                    std::optional<uint64_t> window) {
  if (window && !causal)
    return op->emitOpError() << "'window' (" << *window
                             << ") needs 'causal': a sliding window ends at "
                                "each query's own position";
  return success();
}

LogicalResult verifyExpertFfnOperands(Operation *op, Value input,
                                      Value gateProj, Value downProj,
                                      Value projections) {
  if (failed(
          expectRank(op, "input", input, 3, "[experts, capacity, hidden]")) ||
      failed(
          expectRank(op, "gate_proj", gateProj, 3, "[experts, ffn, hidden]")))
    return failure();
  int64_t experts = shapeOf(input)[0], hidden = shapeOf(input)[2];
  int64_t ffn = shapeOf(gateProj)[1];
  int64_t capacity = shapeOf(input)[1];
  if (failed(expectShape(op, "gate_proj", gateProj, {experts, ffn, hidden})) ||
      failed(expectShape(op, "down_proj", downProj, {experts, hidden, ffn})) ||
      failed(expectShape(op, "projections", projections,
                         {experts, 2, capacity, ffn})))
    return failure();
  // The projections are kept in the operands' type, for the backward. bf16
  // GEMMs may read f32 weights, which the kernels round as they read them.
  Type inputType = getElementTypeOrSelf(input);
  Type weightType = getElementTypeOrSelf(gateProj);
  if (weightType != inputType && !(inputType.isBF16() && weightType.isF32())) {
    InFlightDiagnostic error = op->emitOpError()
                               << "'gate_proj' must have element type "
                               << inputType << " (that of 'input')";
    if (inputType.isBF16())
      error << " or f32 (rounded to bf16 as the GEMMs read it)";
    return error << ", got " << weightType;
  }
  // The weights share one type: the input's, or f32.
  StringRef weightsLike = weightType == inputType ? "input" : "gate_proj";
  if (getElementTypeOrSelf(downProj) != weightType)
    return op->emitOpError() << "'down_proj' must have element type "
                             << weightType << " (that of '" << weightsLike
                             << "'), got " << getElementTypeOrSelf(downProj);
  return verifyGemmElementTypes(
      op, {{"input", input}, {"projections", projections}}, {});
}

LogicalResult expectChosenExperts(Operation *op, int64_t topK) {
  if (topK >= 1)
    return success();
  return op->emitOpError("'indices' must have a column per chosen expert "
                         "(top_k >= 1), got none");
}

LogicalResult expectTopKAtMostExperts(Operation *op, StringRef name,
                                      int64_t topK, int64_t experts) {
  if (topK <= experts)
    return success();
  return op->emitOpError() << "'" << name << "' top_k (" << topK
                           << ") must be at most the number of experts ("
                           << experts << ")";
}

LogicalResult verifyCombineOperands(Operation *op, Value expertOutput,
                                    Value weights, Value indices,
                                    StringRef rowsName, Value rows) {
  if (failed(expectRank(op, "expert_output", expertOutput, 3,
                        "[experts, capacity, hidden]")) ||
      failed(expectRank(op, "weights", weights, 2, "[tokens, top_k]")))
    return failure();
  ArrayRef<int64_t> weightShape = shapeOf(weights);
  if (failed(expectShape(op, "indices", indices, weightShape)))
    return failure();
  return expectShape(op, rowsName, rows,
                     {weightShape[0], shapeOf(expertOutput)[2]});
}

LogicalResult verifyAuxLossOperands(Operation *op, Value probs, Value indices,
                                    StringRef scalarName, Value scalar) {
  if (failed(expectRank(op, "probs", probs, 2, "[tokens, experts]")) ||
      failed(expectRank(op, "indices", indices, 2, "[tokens, top_k]")))
    return failure();
  int64_t tokens = shapeOf(probs)[0], experts = shapeOf(probs)[1];
  int64_t topK = shapeOf(indices)[1];
  if (failed(expectShape(op, "indices", indices, {tokens, topK})) ||
      failed(expectTopKAtMostExperts(op, "indices", topK, experts)))
    return failure();
  return expectSameElementType(op, {{"probs", probs}, {scalarName, scalar}});
}

LogicalResult verifyPooledAuxLossOperands(Operation *op, ValueRange probs,
                                          StringRef probsName,
                                          ValueRange indices,
                                          StringRef scalarName, Value scalar) {
  if (probs.empty())
    return op->emitOpError("needs at least one layer");
  if (probs.size() != indices.size())
    return op->emitOpError() << "has " << probs.size() << " '" << probsName
                             << "' but " << indices.size() << " 'indices'";
  for (auto [layer, layerProbs, layerIndices] :
       llvm::enumerate(probs, indices)) {
    std::string probsLabel = llvm::formatv("{0} #{1}", probsName, layer);
    std::string indicesLabel = llvm::formatv("indices #{0}", layer);
    if (failed(
            expectRank(op, probsLabel, layerProbs, 2, "[tokens, experts]")) ||
        failed(
            expectRank(op, indicesLabel, layerIndices, 2, "[tokens, top_k]")))
      return failure();
    ArrayRef<int64_t> first = shapeOf(probs[0]),
                      firstIndices = shapeOf(indices[0]);
    int64_t tokens = shapeOf(layerProbs)[0];
    if (failed(expectShape(op, probsLabel, layerProbs, {tokens, first[1]})) ||
        failed(expectShape(op, indicesLabel, layerIndices,
                           {tokens, firstIndices[1]})) ||
        failed(expectTopKAtMostExperts(op, indicesLabel, firstIndices[1],
                                       first[1])) ||
        failed(expectSameElementType(
            op, {{probsName, probs[0]}, {probsLabel, layerProbs}})))
      return failure();
  }
  return expectSameElementType(op,
                               {{probsName, probs[0]}, {scalarName, scalar}});
}

LogicalResult verifyZLossOperands(Operation *op, Value logits,
                                  StringRef scalarName, Value scalar) {
  if (failed(expectRank(op, "logits", logits, 2, "[tokens, experts]")))
    return failure();
  return expectSameElementType(op, {{"logits", logits}, {scalarName, scalar}});
}

LogicalResult verifyGateNormalization(Operation *op, FloatAttr lambda,
                                      double eps, Value logits) {
  if (!lambda)
    return expectPositive(op, "norm_eps", eps);
  double value = lambda.getValueAsDouble();
  if (failed(expectPositive(op, "norm_lambda", value)) ||
      failed(expectPositive(op, "norm_eps", eps)))
    return failure();
  // Beyond the logits' type, the largest normalized logit becomes inf and
  // the softmax NaN.
  auto type = cast<FloatType>(getElementTypeOrSelf(logits.getType()));
  double largest =
      APFloat::getLargest(type.getFloatSemantics()).convertToDouble();
  int64_t experts = shapeOf(logits)[1];
  double logit = largestNormalizedLogit(value, experts);
  if (logit <= largest)
    return success();
  return op->emitOpError() << "attribute 'norm_lambda' (" << value
                           << ") is too large for " << experts
                           << " experts: the largest normalized logit, "
                              "lambda * sqrt(experts - 1), is "
                           << logit << ", beyond " << type << " (" << largest
                           << ")";
}

} // namespace mlir::moe::detail

LogicalResult mlir::moe::detail::verifyPlacedTokens(Operation *op, Value tokens,
                                                    Value indices, Value slots,
                                                    Value buffer) {
  if (failed(expectRank(op, "tokens", tokens, 2, "[tokens, hidden]")) ||
      failed(expectRank(op, "indices", indices, 2, "[tokens, top_k]")) ||
      failed(
          expectRank(op, "buffer", buffer, 3, "[experts, capacity, hidden]")))
    return failure();
  int64_t count = shapeOf(tokens)[0], hidden = shapeOf(tokens)[1];
  int64_t topK = shapeOf(indices)[1];
  ArrayRef<int64_t> rows = shapeOf(buffer);
  if (failed(expectShape(op, "indices", indices, {count, topK})) ||
      failed(expectShape(op, "slots", slots, {count, topK})))
    return failure();
  if (failed(expectChosenExperts(op, topK)))
    return failure();
  if (rows[0] < topK)
    return op->emitOpError() << "'buffer' must have at least top_k = " << topK
                             << " experts, got " << rows[0];
  return expectShape(op, "buffer", buffer, {rows[0], rows[1], hidden});
}

FailureOr<int64_t>
mlir::moe::detail::verifyCapacity(Operation *op, FloatAttr factor,
                                  Value priority, int64_t tokens, int64_t topK,
                                  int64_t experts) {
  int64_t capacity = tokens;
  if (factor) {
    double value = factor.getValueAsDouble();
    if (failed(expectPositive(op, "capacity_factor", value)))
      return failure();
    // Capacities past 2^53 are neither exact in a double nor sensible.
    if (value * tokens * topK / experts > 0x1p53)
      return op->emitOpError() << "attribute 'capacity_factor' (" << value
                               << ") gives more than 2^53 rows per expert";
    capacity = mlir::moe::expertCapacity(value, tokens, topK, experts);
  }
  if (priority) {
    if (!factor)
      return op->emitOpError()
             << "'priority' needs a capacity_factor: a dropless "
             << op->getName().stripDialect() << " drops nothing";
    if (failed(expectShape(op, "priority", priority, {tokens, topK})))
      return failure();
  }
  return capacity;
}
