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

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

/// Whether `dtype` holds floats: F32, F64, BF16 or F16.
inline bool isFloat(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::BF16 ||
         dtype == DType::F16;
}

/// Element `i` of float data of `dtype` as stored, as a double (exact for
/// every float dtype); 0 for an integer dtype.
inline double readFloat(DType dtype, const char *data, int64_t i) {
  switch (dtype) {
  case DType::F32: {
    float value;
    std::memcpy(&value, data + 4 * i, 4);
    return value;
  }
  case DType::F64: {
    double value;
    std::memcpy(&value, data + 8 * i, 8);
    return value;
  }
  case DType::BF16: {
    uint16_t half;
    std::memcpy(&half, data + 2 * i, 2);
    uint32_t bits = uint32_t(half) << 16;
    float value;
    std::memcpy(&value, &bits, 4);
    return value;
  }
  case DType::F16: {
    uint16_t half;
    std::memcpy(&half, data + 2 * i, 2);
    int sign = half >> 15, exponent = (half >> 10) & 0x1f,
        mantissa = half & 0x3ff;
    double magnitude = exponent == 0 ? std::ldexp(mantissa, -24)
                       : exponent == 31
                           ? (mantissa ? NAN : INFINITY)
                           : std::ldexp(1024 + mantissa, exponent - 25);
    return sign ? -magnitude : magnitude;
  }
  case DType::I32:
  case DType::I64:
    break;
  }
  return 0;
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

/// The index and value of the first NaN or infinity of a float tensor, as
/// stored; none for an integer tensor.
std::optional<std::pair<int64_t, double>>
firstNonFinite(const TensorView &tensor);

/// Throws "PATH: tensor 'NAME' holds nan at element I" when a float tensor
/// holds a NaN or an infinity: weights that are read must be finite before
/// anything trains on or exports them.
void requireFinite(const std::string &path, const TensorView &tensor);

/// Throws "PATH: not written: tensor 'NAME' holds nan at element I (training
/// diverged); KEPT is kept" when a float tensor about to be written holds a
/// NaN or an infinity: no writer leaves a file that every reader refuses.
/// `kept` names what stays at PATH ("the previous checkpoint").
void requireFiniteToWrite(const std::string &path, const TensorView &tensor,
                          std::string_view kept);

using Metadata = std::map<std::string, std::string>;

/// The metadata key under which writeSafetensors records the CRC-32
/// (zlib's) of each tensor's bytes and of the other metadata, a JSON object
/// of 8 hex digits by tensor name (the metadata's under "__metadata__");
/// SafetensorsReader checks them in a file that has it (ours), so that a
/// damaged byte is named, not trained on. Neither it nor
/// readSafetensorsMetadata gives the key with the metadata.
inline constexpr std::string_view kChecksumsKey = "moe.crc32";

class SafetensorsReader {
public:
  /// Reads and validates the whole file (its tensors' checksums too, where
  /// it records them); throws moert::Error.
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

/// The metadata of the safetensors file at `path`, read from its header
/// alone (a checkpoint can be most of a disk); throws moert::Error.
Metadata readSafetensorsMetadata(const std::string &path);

/// Throws moert::Error where AtomicFile would refuse `path`, and when it is
/// a non-empty regular file that is not safetensors (the training data,
/// say): a writer replaces only its own kind of file.
void requireReplaceableSafetensors(const std::string &path);

/// Writes `tensors` to `path` through a temporary file, fsync and rename,
/// with their checksums in the metadata; an existing `path` must be a
/// safetensors file.
void writeSafetensors(const std::string &path,
                      const std::vector<TensorView> &tensors,
                      const Metadata &metadata = {});

} // namespace moert

#endif // MOERT_SAFETENSORS_H
