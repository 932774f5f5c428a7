//===- Safetensors.cpp - the Hugging Face safetensors format --------------===//

#include "moert/Safetensors.h"
#include "moert/AtomicFile.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/HostThreads.h"
#include "moert/Json.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <tuple>

using moert::DType;
using nlohmann::json;

size_t moert::dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::BF16:
  case DType::F16:
    return 2;
  }
  return 0;
}

std::string_view moert::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::F64:
    return "F64";
  case DType::I32:
    return "I32";
  case DType::I64:
    return "I64";
  case DType::BF16:
    return "BF16";
  case DType::F16:
    return "F16";
  }
  return "?";
}

std::optional<DType> moert::parseDType(std::string_view name) {
  for (DType dtype : {DType::F32, DType::F64, DType::I32, DType::I64,
                      DType::BF16, DType::F16})
    if (dtypeName(dtype) == name)
      return dtype;
  return std::nullopt;
}

void moert::failStorageOnly(DType dtype) {
  fail("{} tensors are read and converted, not computed with (models use F32 "
       "or F64)",
       dtypeName(dtype));
}

int64_t moert::numElements(const std::vector<int64_t> &shape) {
  // Bounded so that byte counts of 8-byte elements cannot overflow either.
  constexpr int64_t kMaxElements = int64_t(1) << 59;
  int64_t count = 1;
  for (int64_t dim : shape)
    if (dim < 0 || __builtin_mul_overflow(count, dim, &count) ||
        count > kMaxElements)
      fail("a tensor of shape {} has more than 2^59 elements",
           formatShape(shape));
  return count;
}

std::string moert::formatShape(const std::vector<int64_t> &shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;

/// Parses one tensor entry of the header; `dataBytes` bounds its offsets.
moert::TensorView parseEntry(const std::string &path, const std::string &name,
                             const json &entry, const char *data,
                             uint64_t dataBytes, uint64_t &begin) {
  auto bad = [&](const std::string &why) {
    moert::fail("{}: tensor '{}': {}", path, name, why);
  };
  if (!entry.is_object())
    bad("entry must be a JSON object");
  if (!entry.contains("dtype") || !entry["dtype"].is_string())
    bad("missing string field 'dtype'");
  std::string dtypeText = entry["dtype"];
  std::optional<DType> dtype = moert::parseDType(dtypeText);
  if (!dtype)
    bad(fmt::format(
        "unsupported dtype '{}' (supported: F32, F64, I32, I64, BF16, F16)",
        dtypeText));
  if (!entry.contains("shape") || !entry["shape"].is_array())
    bad("missing array field 'shape'");
  std::vector<int64_t> shape;
  // The byte count of the shape must not overflow: a wrapped count could
  // match a small span and pass the checks below.
  uint64_t maxElements = INT64_MAX / moert::dtypeSize(*dtype), elements = 1;
  for (const json &dim : entry["shape"]) {
    if (!dim.is_number_unsigned())
      bad("shape entries must be non-negative integers, got " + dim.dump());
    uint64_t size = dim.get<uint64_t>();
    if (size != 0 && elements > maxElements / size)
      bad(fmt::format("shape {} has too many elements", entry["shape"].dump()));
    elements *= size;
    shape.push_back(static_cast<int64_t>(size));
  }
  const json &offsets = entry.value("data_offsets", json());
  if (!offsets.is_array() || offsets.size() != 2 ||
      !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    bad("'data_offsets' must be [begin, end] with non-negative integers");
  begin = offsets[0].get<uint64_t>();
  uint64_t end = offsets[1].get<uint64_t>();
  if (begin > end)
    bad(fmt::format("data_offsets [{}, {}] end before they begin", begin, end));
  if (end > dataBytes)
    bad(fmt::format("data_offsets [{}, {}] lie outside the {} data bytes of "
                    "the file (truncated?)",
                    begin, end, dataBytes));
  moert::TensorView view{name, *dtype, shape, data + begin};
  if (end - begin != view.bytes())
    bad(fmt::format(
        "data_offsets span {} bytes but dtype {} and shape {} need {}",
        end - begin, dtypeText, moert::formatShape(shape), view.bytes()));
  return view;
}

/// The little-endian header length that starts a safetensors file.
uint64_t headerLengthOf(const std::vector<char> &contents) {
  uint64_t headerBytes = 0;
  for (int i = 7; i >= 0; --i)
    headerBytes = (headerBytes << 8) | static_cast<unsigned char>(contents[i]);
  return headerBytes;
}

/// The header of a safetensors file whose `contents` hold at least its
/// header (all of its bytes, or all those the header needs), checked;
/// `headerBytes` is set to its length.
json parseHeader(const std::string &path, const std::vector<char> &contents,
                 uint64_t &headerBytes) {
  if (contents.size() < 8)
    moert::fail("{}: file is {} bytes, too short for the 8-byte header length",
                path, contents.size());
  headerBytes = headerLengthOf(contents);
  // Checked first: readSafetensorsMetadata reads no more than the length
  // when it is this large.
  if (headerBytes > kMaxHeaderBytes)
    moert::fail("{}: header length {} exceeds the {} bytes a header may "
                "have (not safetensors?)",
                path, headerBytes, kMaxHeaderBytes);
  if (headerBytes > contents.size() - 8)
    moert::fail("{}: header length {} exceeds the {} bytes after it "
                "(truncated or not safetensors)",
                path, headerBytes, contents.size() - 8);
  // A key twice (a tensor, the metadata, a dtype) is an error, not the
  // last one silently.
  json header = moert::parseJsonOrFail(
      std::string_view(contents.data() + 8, headerBytes), path + ": header");
  if (!header.is_object())
    moert::fail("{}: header is not a JSON object", path);
  return header;
}

moert::Metadata parseMetadata(const std::string &path, const json &entry) {
  if (!entry.is_object())
    moert::fail("{}: '__metadata__' must be an object of strings", path);
  moert::Metadata metadata;
  for (auto &[key, value] : entry.items()) {
    if (!value.is_string())
      moert::fail("{}: metadata '{}' must be a string", path, key);
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

/// zlib's CRC-32 of `size` bytes, as 8 lowercase hex digits.
std::string crc32Of(const void *data, uint64_t size) {
  const auto *bytes = static_cast<const Bytef *>(data);
  uLong sum = crc32(0L, Z_NULL, 0);
  // zlib takes at most 4 GiB - 1 bytes a call.
  for (uint64_t left = size; left > 0;) {
    uInt chunk = static_cast<uInt>(std::min<uint64_t>(left, 1u << 30));
    sum = crc32(sum, bytes, chunk);
    bytes += chunk;
    left -= chunk;
  }
  return fmt::format("{:08x}", static_cast<uint32_t>(sum));
}

/// The record of kChecksumsKey: each tensor's checksum by name, computed on
/// every core, and under "__metadata__" (a name no tensor has) that of the
/// other metadata, key and value each ended by a NUL, in key order.
json checksumsOf(const std::vector<moert::TensorView> &tensors,
                 const moert::Metadata &metadata) {
  std::vector<std::string> sums(tensors.size());
  moert::forEachOnHostThreads(tensors.size(), [&](size_t i) {
    sums[i] = crc32Of(tensors[i].data, tensors[i].bytes());
  });
  json record = json::object();
  for (size_t i = 0; i < tensors.size(); ++i)
    record[tensors[i].name] = sums[i];
  std::string entries;
  for (const auto &[key, value] : metadata)
    if (key != moert::kChecksumsKey)
      entries += key + '\0' + value + '\0';
  record["__metadata__"] = crc32Of(entries.data(), entries.size());
  return record;
}

/// Throws moert::Error unless `record`, the file's kChecksumsKey metadata,
/// holds exactly the checksums of its tensors and other metadata.
void checkChecksums(const std::string &path, const std::string &record,
                    const std::vector<moert::TensorView> &tensors,
                    const moert::Metadata &metadata) {
  std::string where =
      fmt::format("{}: metadata '{}'", path, moert::kChecksumsKey);
  json expected = moert::parseJsonOrFail(record, where);
  if (!expected.is_object())
    moert::fail("{} must be an object of checksums by tensor name", where);
  for (auto &[name, sum] : expected.items())
    if (!sum.is_string() || sum.get<std::string>().size() != 8 ||
        sum.get<std::string>().find_first_not_of("0123456789abcdef") !=
            std::string::npos)
      moert::fail("{}: the checksum of '{}' is {}, not 8 lowercase hex digits "
                  "(was the file edited?)",
                  where, name, sum.dump());
  json actual = checksumsOf(tensors, metadata);
  for (auto &[name, sum] : actual.items()) {
    std::string what = name == "__metadata__"
                           ? std::string("its metadata")
                           : fmt::format("tensor '{}'", name);
    if (!expected.contains(name))
      moert::fail("{} has no checksum of {} (was the file edited?)", where,
                  what);
    if (expected[name] != sum)
      moert::fail("{}: {} is damaged: its bytes' CRC-32 is {}, but the file "
                  "recorded {} when it was written (a tool that edits tensors "
                  "or metadata and keeps the record must drop '{}')",
                  path, what, sum.get<std::string>(),
                  expected[name].get<std::string>(), moert::kChecksumsKey);
  }
  for (auto &[name, sum] : expected.items())
    if (!actual.contains(name))
      moert::fail("{} names tensor '{}', which the file does not hold (was "
                  "the file edited?)",
                  where, name);
}

} // namespace

moert::Metadata moert::readSafetensorsMetadata(const std::string &path) {
  const char *what = "safetensors file";
  std::vector<char> start = readRegularFile(path, what, 8);
  // A length too large fails parseHeader's check on the 8 bytes alone.
  uint64_t headerBytes = start.size() < 8 ? 0 : headerLengthOf(start);
  if (headerBytes <= kMaxHeaderBytes)
    start = readRegularFile(path, what, 8 + headerBytes);
  json header = parseHeader(path, start, headerBytes);
  Metadata metadata;
  if (header.contains("__metadata__"))
    metadata = parseMetadata(path, header["__metadata__"]);
  // As SafetensorsReader gives it: the checksums are the readers' business.
  metadata.erase(std::string(kChecksumsKey));
  return metadata;
}

moert::SafetensorsReader::SafetensorsReader(std::string pathArg)
    : SafetensorsReader(pathArg, readRegularFile(pathArg, "safetensors file")) {
}

moert::SafetensorsReader::SafetensorsReader(std::string pathArg,
                                            std::vector<char> contentsArg)
    : path(std::move(pathArg)), contents(std::move(contentsArg)) {
  uint64_t headerBytes = 0;
  json header = parseHeader(path, contents, headerBytes);
  const char *data = contents.data() + 8 + headerBytes;
  uint64_t dataBytes = contents.size() - 8 - headerBytes;
  // (start, bytes, index): empty tensors sort before the one that shares
  // their start.
  std::vector<std::tuple<uint64_t, uint64_t, size_t>> starts;
  for (auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      metadata = parseMetadata(path, entry);
      continue;
    }
    uint64_t begin = 0;
    tensors.push_back(parseEntry(path, name, entry, data, dataBytes, begin));
    starts.push_back({begin, tensors.back().bytes(), tensors.size() - 1});
  }
  // The format indexes the data entirely, without holes or shared bytes: a
  // header length that is off by a byte shows as a hole.
  std::sort(starts.begin(), starts.end());
  uint64_t expected = 0;
  std::string previous = "the header";
  for (const auto &[begin, bytes, index] : starts) {
    const TensorView &tensor = tensors[index];
    if (begin != expected)
      fail("{}: tensor '{}' starts at data byte {}, but {} ends at {}{}", path,
           tensor.name, begin, previous, expected,
           begin > expected ? " (a hole: is the header length right?)"
                            : " (they overlap)");
    expected = begin + bytes;
    previous = "tensor '" + tensor.name + "'";
  }
  if (expected != dataBytes)
    fail("{}: the tensors cover {} of the {} data bytes (is the header length "
         "right?)",
         path, expected, dataBytes);
  // The checksums are the reader's business, not its callers'.
  if (auto record = metadata.find(std::string(kChecksumsKey));
      record != metadata.end()) {
    checkChecksums(path, record->second, tensors, metadata);
    metadata.erase(record);
  }
}

std::optional<std::pair<int64_t, double>>
moert::firstNonFinite(const TensorView &tensor) {
  if (!isFloat(tensor.dtype))
    return std::nullopt;
  int64_t count = numElements(tensor.shape);
  const char *data = static_cast<const char *>(tensor.data);
  for (int64_t i = 0; i < count; ++i) {
    double value = readFloat(tensor.dtype, data, i);
    if (!std::isfinite(value))
      return std::make_pair(i, value);
  }
  return std::nullopt;
}

void moert::requireFinite(const std::string &path, const TensorView &tensor) {
  if (auto bad = firstNonFinite(tensor))
    fail("{}: tensor '{}' holds {} at element {}", path, tensor.name,
         bad->second, bad->first);
}

void moert::requireFiniteToWrite(const std::string &path,
                                 const TensorView &tensor,
                                 std::string_view kept) {
  if (auto bad = firstNonFinite(tensor))
    fail("{}: not written: tensor '{}' holds {} at element {} (training "
         "diverged); {} is kept",
         path, tensor.name, bad->second, bad->first, kept);
}

const moert::TensorView *
moert::SafetensorsReader::find(std::string_view name) const {
  for (const TensorView &tensor : tensors)
    if (tensor.name == name)
      return &tensor;
  return nullptr;
}

void moert::requireReplaceableSafetensors(const std::string &path) {
  requireReplaceableFile(path);
  // An empty file (mktemp's) holds nothing to lose.
  struct stat status;
  if (stat(path.c_str(), &status) != 0 || status.st_size == 0)
    return;
  // A file that cannot be opened (no descriptor left) is not judged.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    fail("{}: exists and cannot be opened to check that it is a safetensors "
         "file ({}): not replacing it",
         path, describeErrno());
  close(fd);
  try {
    readSafetensorsMetadata(path);
  } catch (const Error &error) {
    // The reason without its leading "PATH: ".
    std::string reason = error.what();
    if (reason.rfind(path + ": ", 0) == 0)
      reason.erase(0, path.size() + 2);
    fail("{}: exists and is not a safetensors file ({}): not replacing it",
         path, reason);
  }
}

void moert::writeSafetensors(const std::string &path,
                             const std::vector<TensorView> &tensors,
                             const Metadata &metadata) {
  requireReplaceableSafetensors(path);
  Metadata recorded = metadata;
  recorded[std::string(kChecksumsKey)] = checksumsOf(tensors, metadata).dump();
  json header = json::object();
  header["__metadata__"] = recorded;
  uint64_t offset = 0;
  for (const TensorView &tensor : tensors) {
    if (header.contains(tensor.name))
      fail("{}: tensor '{}' is written twice", path, tensor.name);
    header[tensor.name] = {{"dtype", dtypeName(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.bytes()}}};
    offset += tensor.bytes();
  }
  std::string headerText = header.dump();
  // Pad with spaces so that the data starts 8-byte aligned.
  headerText.append((8 - headerText.size() % 8) % 8, ' ');

  AtomicFile file(path);
  uint64_t headerBytes = headerText.size();
  char lengthBytes[8];
  for (int i = 0; i < 8; ++i)
    lengthBytes[i] = static_cast<char>((headerBytes >> (8 * i)) & 0xff);
  file.write(lengthBytes, 8);
  file.write(headerText.data(), headerText.size());
  for (const TensorView &tensor : tensors)
    file.write(static_cast<const char *>(tensor.data), tensor.bytes());
  file.commit();
}
