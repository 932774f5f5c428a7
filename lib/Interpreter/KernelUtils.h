//===- KernelUtils.h - helpers shared by the reference kernels --*- C++ -*-===//

#ifndef MOE_LIB_INTERPRETER_KERNELUTILS_H
#define MOE_LIB_INTERPRETER_KERNELUTILS_H

#include "moe/Interpreter/Tensor.h"
#include "moert/Error.h"
#include "moert/RowMath.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace mlir::moe::ref::detail {

/// Checks an index read from an index tensor lies in [0, bound).
inline int64_t checkedIndex(double value, int64_t bound, const char *what) {
  int64_t index = static_cast<int64_t>(value);
  if (index < 0 || index >= bound)
    moert::fail("{} {} is outside [0, {})", what, index, bound);
  return index;
}

/// An intermediate that a GEMM over `operandType` operands reads: rounded
/// to bf16 for bf16 GEMMs (tensor cores read bf16), kept exact otherwise.
inline double gemmOperand(double value, DType operandType) {
  return operandType == DType::BF16 ? rounded(value, DType::BF16) : value;
}

/// `tensor`'s shape with its last dimension `last`.
inline std::vector<int64_t> withLastDim(const Tensor &tensor, int64_t last) {
  std::vector<int64_t> shape = tensor.shape;
  shape.back() = last;
  return shape;
}

/// The heads of a [..., heads, width] shape as moe.concat reads it: its
/// second-to-last dimension, or 1 for a vector.
inline int64_t headsOf(const std::vector<int64_t> &shape) {
  return shape.size() >= 2 ? shape[shape.size() - 2] : 1;
}

using moert::rows::logSumExp;
using moert::rows::normalizeRow;
using moert::rows::normalizeRowGrad;

/// Calls `fn(assignment, row)` for each kept assignment (token t, choice c)
/// of a dispatch, in token-major order: `assignment` = t * topK + c indexes
/// `indices`/`slots`/weights, `row` = expert * capacity + slot indexes the
/// [E, capacity, hidden] buffer. Dropped assignments (slot -1) are skipped.
template <typename Fn>
void forEachKeptAssignment(const Tensor &indices, const Tensor &slots,
                           int64_t experts, int64_t capacity, const char *op,
                           Fn &&fn) {
  std::string expertWhat = std::string(op) + ": expert index";
  std::string slotWhat = std::string(op) + ": slot";
  for (int64_t assignment = 0; assignment < indices.numel(); ++assignment) {
    if (slots.data[assignment] < 0)
      continue;
    int64_t expert =
        checkedIndex(indices.data[assignment], experts, expertWhat.c_str());
    int64_t slot =
        checkedIndex(slots.data[assignment], capacity, slotWhat.c_str());
    fn(assignment, expert * capacity + slot);
  }
}

/// The statistics both auxiliary losses read: P_j, the mean gate
/// probability of expert j, and f_j, the fraction of the T * k assignments
/// that chose it.
struct RouterStatistics {
  std::vector<double> meanProb, assignedFraction;
};

inline RouterStatistics routerStatistics(const Tensor &probs,
                                         const Tensor &indices) {
  int64_t tokens = probs.dim(0), experts = probs.dim(1);
  int64_t assignments = indices.numel();
  RouterStatistics stats{std::vector<double>(experts, 0.0),
                         std::vector<double>(experts, 0.0)};
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t e = 0; e < experts; ++e)
      stats.meanProb[e] += probs.data[t * experts + e] / tokens;
  for (int64_t i = 0; i < assignments; ++i)
    stats.assignedFraction[checkedIndex(indices.data[i], experts,
                                        "moe.aux_loss: expert index")] +=
        1.0 / static_cast<double>(assignments);
  return stats;
}

} // namespace mlir::moe::ref::detail

#endif // MOE_LIB_INTERPRETER_KERNELUTILS_H
