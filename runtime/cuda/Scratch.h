//===- Scratch.h - a kernel's scratch arrays in the workspace ---*- C++ -*-===//
//
// A host function takes all of its scratch arrays from one workspace()
// buffer (valid until the next call): a layout function takes the arrays in
// order, once to size the buffer and once to carve it. Internal to
// moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_SCRATCH_H
#define MOERT_CUDA_SCRATCH_H

#include "Support.h"

#include <cstddef>
#include <cstdint>

namespace moert::cuda {

class Scratch {
public:
  explicit Scratch(char *base) : base(base) {}

  /// The next array of `count` T, 256-byte aligned (null while sizing).
  template <typename T> T *take(int64_t count) {
    offset = (offset + kAlignment - 1) / kAlignment * kAlignment;
    T *array = base ? reinterpret_cast<T *>(base + offset) : nullptr;
    offset += static_cast<size_t>(count > 0 ? count : 0) * sizeof(T);
    return array;
  }
  size_t bytes() const { return offset; }

private:
  static constexpr size_t kAlignment = 256;
  char *base;
  size_t offset = 0;
};

/// Calls layout(Scratch &) to size the workspace, then again to carve it.
template <typename Layout> void carveWorkspace(Layout layout) {
  Scratch sizing(nullptr);
  layout(sizing);
  Scratch carving(static_cast<char *>(workspace(sizing.bytes())));
  layout(carving);
}

} // namespace moert::cuda

#endif // MOERT_CUDA_SCRATCH_H
