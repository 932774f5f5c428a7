//===- KernelUtils.h - helpers shared by the reference kernels --*- C++ -*-===//

#ifndef MOE_LIB_INTERPRETER_KERNELUTILS_H
#define MOE_LIB_INTERPRETER_KERNELUTILS_H

#include "moe/Interpreter/Tensor.h"
#include "moert/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace mlir::moe::ref::detail {

/// Checks an index read from an index tensor lies in [0, bound).
inline int64_t checkedIndex(double value, int64_t bound, const char *what) {
  int64_t index = static_cast<int64_t>(value);
  if (index < 0 || index >= bound)
    moert::fail(what, " ", index, " is outside [0, ", bound, ")");
  return index;
}

/// log(sum(exp(row))) computed stably.
inline double logSumExp(const double *row, int64_t size) {
  double maximum = *std::max_element(row, row + size);
  double sum = 0;
  for (int64_t i = 0; i < size; ++i)
    sum += std::exp(row[i] - maximum);
  return maximum + std::log(sum);
}

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

} // namespace mlir::moe::ref::detail

#endif // MOE_LIB_INTERPRETER_KERNELUTILS_H
