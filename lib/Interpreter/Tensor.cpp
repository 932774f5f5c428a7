//===- Tensor.cpp - tensors of the reference interpreter ------------------===//

#include "moe/Interpreter/Tensor.h"
#include "moert/Bf16.h"

#include <algorithm>
#include <cstring>

double mlir::moe::ref::rounded(double value, DType dtype) {
  if (dtype == DType::F32)
    return static_cast<float>(value);
  // Through f32, as a kernel with an f32 accumulator narrows its result.
  if (dtype == DType::BF16)
    return moert::roundToBf16(static_cast<float>(value));
  return value;
}

void mlir::moe::ref::Tensor::roundToDType() {
  for (double &value : data)
    value = rounded(value, dtype);
}

mlir::moe::ref::Tensor
mlir::moe::ref::Tensor::fromView(const moert::TensorView &view) {
  Tensor tensor = zeros(view.dtype, view.shape);
  moert::visitDType(view.dtype, [&](auto element) {
    using T = decltype(element);
    std::vector<T> values(tensor.numel());
    std::memcpy(values.data(), view.data, view.bytes());
    std::copy(values.begin(), values.end(), tensor.data.begin());
  });
  return tensor;
}

std::vector<char> mlir::moe::ref::Tensor::toBytes() const {
  return moert::visitDType(dtype, [&](auto element) {
    using T = decltype(element);
    std::vector<char> bytes(numel() * sizeof(T));
    for (int64_t i = 0; i < numel(); ++i) {
      T value = static_cast<T>(data[i]);
      std::memcpy(bytes.data() + i * sizeof(T), &value, sizeof(T));
    }
    return bytes;
  });
}

std::vector<moert::TensorView> mlir::moe::ref::viewsOf(
    const std::vector<std::pair<std::string, const Tensor *>> &tensors,
    std::vector<std::vector<char>> &storage) {
  std::vector<moert::TensorView> views;
  storage.reserve(storage.size() + tensors.size());
  for (const auto &[name, tensor] : tensors) {
    storage.push_back(tensor->toBytes());
    views.push_back(
        {name, tensor->dtype, tensor->shape, storage.back().data()});
  }
  return views;
}
