//===- KernelUtils.h - helpers shared by the reference kernels --*- C++ -*-===//

#ifndef MOE_LIB_INTERPRETER_KERNELUTILS_H
#define MOE_LIB_INTERPRETER_KERNELUTILS_H

#include "moert/Error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

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

} // namespace mlir::moe::ref::detail

#endif // MOE_LIB_INTERPRETER_KERNELUTILS_H
