//===- Tensor.h - tensors of the reference interpreter ----------*- C++ -*-===//
//
// The interpreter favours clarity over speed: every tensor, whatever its
// element type, stores its values as doubles (exact for i32 and for the
// integers it counts). Kernels compute in double; an f32 result is rounded
// to float once per op, which is how an f32 kernel that accumulates in high
// precision behaves. bf16 values are rounded the same way, to nearest even.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_TENSOR_H
#define MOE_INTERPRETER_TENSOR_H

#include "moert/Safetensors.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mlir::moe::ref {

using moert::DType;

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<double> data;

  static Tensor zeros(DType dtype, std::vector<int64_t> shape) {
    Tensor tensor{dtype, std::move(shape), {}};
    tensor.data.assign(moert::numElements(tensor.shape), 0.0);
    return tensor;
  }
  static Tensor scalar(DType dtype, double value) {
    return Tensor{dtype, {}, {value}};
  }

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t dim(int64_t axis) const {
    return shape[axis < 0 ? axis + shape.size() : axis];
  }
  /// The rows of a [..., last] tensor: the product of every dimension but
  /// the last, also when the last is 0.
  int64_t rowCount() const {
    return moert::numElements(
        std::vector<int64_t>(shape.begin(), shape.end() - 1));
  }
  /// Rounds every value to the precision of `dtype` (f32 values to float,
  /// bf16 values to nearest even bf16 of their float).
  void roundToDType();

  /// A copy of a tensor read from a safetensors file.
  static Tensor fromView(const moert::TensorView &view);
  /// The values in `dtype`'s little-endian bytes, for a safetensors file.
  std::vector<char> toBytes() const;
};

/// `value` in the precision of `dtype`, as Tensor::roundToDType rounds.
double rounded(double value, DType dtype);

/// Views of `tensors` (named) for writeSafetensors; `storage` keeps the bytes.
std::vector<moert::TensorView>
viewsOf(const std::vector<std::pair<std::string, const Tensor *>> &tensors,
        std::vector<std::vector<char>> &storage);

} // namespace mlir::moe::ref

#endif // MOE_INTERPRETER_TENSOR_H
