//===- Safetensors.h - the Hugging Face safetensors format ------*- C++ -*-===//
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {dtype, shape, data_offsets} (plus an optional
// "__metadata__" string map), then the raw little-endian tensor data.
// Reading validates every field, so a truncated or inconsistent file is
// refused with a message that names the file and the tensor at fault.
// Writing is atomic: a failed write never damages an existing file.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_SAFETENSORS_H
#define MOERT_SAFETENSORS_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moert {

/// Element types of tensors in files. Models compute in F32 or F64 and
/// index with I32 and I64; BF16 and F16 are only read (Hugging Face
/// checkpoints), and converted (see WeightSource.h).
enum class DType { F32, F64, I32, I64, BF16, F16 };

size_t dtypeSize(DType dtype);
/// The safetensors spelling: "F32", "F64", "I32", "I64", "BF16", "F16".
std::string_view dtypeName(DType dtype);
std::optional<DType> parseDType(std::string_view name);

[[noreturn]] void failStorageOnly(DType dtype);

/// Calls `fn(T())` with T the C++ type of `dtype`'s elements; BF16 and F16
/// have none (an error).
template <typename Fn> decltype(auto) visitDType(DType dtype, Fn &&fn) {
  switch (dtype) {
  case DType::F32:
    return fn(float());
  case DType::F64:
    return fn(double());
  case DType::I32:
    return fn(int32_t());
  case DType::BF16:
  case DType::F16:
    failStorageOnly(dtype);
  case DType::I64:
    break;
  }
  return fn(int64_t());
}

int64_t numElements(const std::vector<int64_t> &shape);
std::string formatShape(const std::vector<int64_t> &shape);

/// A tensor in a file being read, or one to be written.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void *data;
  size_t bytes() const { return numElements(shape) * dtypeSize(dtype); }
};

using Metadata = std::map<std::string, std::string>;

class SafetensorsReader {
public:
  /// Reads and validates the whole file; throws moert::Error.
  explicit SafetensorsReader(std::string path);
  /// Parses `contents`, the bytes of a file that errors call `path`.
  SafetensorsReader(std::string path, std::vector<char> contents);

  const std::string &getPath() const { return path; }
  const std::vector<TensorView> &getTensors() const { return tensors; }
  const Metadata &getMetadata() const { return metadata; }
  /// The tensor named `name`, or nullptr.
  const TensorView *find(std::string_view name) const;

private:
  std::string path;
  std::vector<char> contents;
  std::vector<TensorView> tensors;
  Metadata metadata;
};

/// Writes `tensors` to `path` through a temporary file, fsync and rename.
void writeSafetensors(const std::string &path,
                      const std::vector<TensorView> &tensors,
                      const Metadata &metadata = {});

} // namespace moert

#endif // MOERT_SAFETENSORS_H
