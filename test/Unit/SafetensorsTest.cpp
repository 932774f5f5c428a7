//===- SafetensorsTest.cpp - safetensors reader, writer, atomic files -----===//

#include "moert/Safetensors.h"
#include "moe/Interpreter/Tensor.h"
#include "moert/Error.h"

#include "TemporaryDirectory.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using moert::DType;
using moert::SafetensorsReader;
using moert::TensorView;

using namespace moe::test;

namespace {

/// Gives every test its own empty directory and removes it afterwards.
class SafetensorsTest : public ::testing::Test {
protected:
  std::string pathOf(const std::string &name) const {
    return directory.pathOf(name);
  }
  std::vector<std::string> listDir() const { return directory.names(); }

  TemporaryDirectory directory{"moe-safetensors"};

  /// Writes raw bytes to `name`.
  std::string writeBytes(const std::string &name, const std::string &bytes) {
    std::string path = pathOf(name);
    std::ofstream file(path, std::ios::binary);
    file.write(bytes.data(), bytes.size());
    return path;
  }

  /// Writes an 8-byte little-endian length `headerLength`, `header` and
  /// `data` to `name`.
  std::string writeRaw(const std::string &name, const std::string &header,
                       const std::string &data, uint64_t headerLength) {
    std::string bytes;
    for (int i = 0; i < 8; ++i)
      bytes.push_back(static_cast<char>((headerLength >> (8 * i)) & 0xff));
    return writeBytes(name, bytes + header + data);
  }
  std::string writeRaw(const std::string &name, const std::string &header,
                       const std::string &data) {
    return writeRaw(name, header, data, header.size());
  }
  /// What reading the file writeRaw writes throws.
  template <typename... Args> std::string readError(const Args &...args) {
    std::string path = writeRaw(args...);
    return errorOf([&] { SafetensorsReader reader(path); });
  }
};

template <typename T> std::vector<T> valuesOf(const TensorView &view) {
  std::vector<T> values(view.bytes() / sizeof(T));
  std::memcpy(values.data(), view.data, view.bytes());
  return values;
}

/// 16 zero bytes: enough data for a [4] f32 or a [2] f64 tensor.
const std::string kSixteenBytes(16, '\0');

} // namespace

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, WritesAndReadsBackEveryDTypeAndMetadata) {
  const float f32[] = {1.5f, -0.25f, 3.0e38f, 0.0f, 1.0e-30f, -7.0f};
  const double f64[] = {0.1, -1.0e300};
  const int32_t i32[] = {-2147483647 - 1, 0, 2147483647};
  const int64_t i64[] = {(int64_t(1) << 40) + 1, -5, INT64_MAX, INT64_MIN};
  const int64_t step[] = {42};
  std::vector<TensorView> views = {{"layer.weight", DType::F32, {2, 3}, f32},
                                   {"layer.bias", DType::F64, {2}, f64},
                                   {"ids", DType::I32, {3}, i32},
                                   {"counts", DType::I64, {2, 1, 2}, i64},
                                   {"step", DType::I64, {}, step}};
  moert::Metadata metadata = {{"format", "pt"}, {"step", "42"}};
  std::string path = pathOf("model.safetensors");
  moert::writeSafetensors(path, views, metadata);

  SafetensorsReader reader(path);
  EXPECT_EQ(reader.getPath(), path);
  EXPECT_EQ(reader.getMetadata(), metadata);
  ASSERT_EQ(reader.getTensors().size(), 5u);

  const TensorView *weight = reader.find("layer.weight");
  ASSERT_NE(weight, nullptr);
  EXPECT_EQ(weight->dtype, DType::F32);
  EXPECT_EQ(weight->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(valuesOf<float>(*weight), std::vector<float>(f32, f32 + 6));

  const TensorView *bias = reader.find("layer.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::F64);
  EXPECT_EQ(bias->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(valuesOf<double>(*bias), std::vector<double>(f64, f64 + 2));

  const TensorView *ids = reader.find("ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->dtype, DType::I32);
  EXPECT_EQ(valuesOf<int32_t>(*ids), std::vector<int32_t>(i32, i32 + 3));

  const TensorView *counts = reader.find("counts");
  ASSERT_NE(counts, nullptr);
  EXPECT_EQ(counts->dtype, DType::I64);
  EXPECT_EQ(counts->shape, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(valuesOf<int64_t>(*counts), std::vector<int64_t>(i64, i64 + 4));

  const TensorView *scalar = reader.find("step");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(valuesOf<int64_t>(*scalar), std::vector<int64_t>{42});

  EXPECT_EQ(reader.find("missing"), nullptr);
}

TEST_F(SafetensorsTest, WrittenHeaderIsPaddedToEightBytes) {
  const float value[] = {1.0f};
  std::string path = pathOf("padded.safetensors");
  moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  std::ifstream file(path, std::ios::binary);
  unsigned char length[8];
  file.read(reinterpret_cast<char *>(length), 8);
  uint64_t headerBytes = 0;
  for (int i = 7; i >= 0; --i)
    headerBytes = (headerBytes << 8) | length[i];
  EXPECT_EQ(headerBytes % 8, 0u);
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(static_cast<uint64_t>(info.st_size), 8 + headerBytes + 4);
}

TEST_F(SafetensorsTest, ReadingChecksTheChecksumsOfWrittenTensors) {
  const float a[] = {1.0f, 2.0f}, b[] = {3.0f, 4.0f, 5.0f};
  std::string path = pathOf("sums.safetensors");
  // An empty tensor's checksum is that of no bytes.
  moert::writeSafetensors(path, {{"a", DType::F32, {2}, a},
                                 {"empty", DType::F32, {0}, a},
                                 {"b", DType::F32, {3}, b}});
  EXPECT_TRUE(SafetensorsReader(path).getMetadata().empty());
  EXPECT_TRUE(moert::readSafetensorsMetadata(path).empty());
  // One bit of b's last value flipped in the file.
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(-1, std::ios::end);
  char last = static_cast<char>(file.get());
  file.seekp(-1, std::ios::end);
  file.put(static_cast<char>(last ^ 0x01));
  file.close();
  std::string message = errorOf([&] { SafetensorsReader reader(path); });
  EXPECT_TRUE(contains(message, "sums.safetensors: tensor 'b' is damaged: its "
                                "bytes' CRC-32 is "))
      << message;
  EXPECT_TRUE(contains(message, "but the file recorded")) << message;
}

TEST_F(SafetensorsTest, RefusesChecksumsOfOtherTensors) {
  std::string tensor =
      R"("x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]})";
  // CRC-32 of 16 zero bytes, and of no other metadata.
  std::string sum = R"(\"x\": \"ecbb4b55\", \"__metadata__\": \"00000000\")";
  EXPECT_NO_THROW(SafetensorsReader(writeRaw(
      "right.safetensors",
      R"({"__metadata__": {"moe.crc32": "{)" + sum + R"(}"}, )" + tensor + "}",
      kSixteenBytes)));
  std::string message = readError(
      "missing.safetensors",
      R"({"__metadata__": {"moe.crc32": "{\"__metadata__\": \"00000000\"}"}, )" +
          tensor + "}",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "metadata 'moe.crc32' has no checksum of "
                                "tensor 'x' (was the file edited?)"))
      << message;
  message = readError("extra.safetensors",
                      R"({"__metadata__": {"moe.crc32": "{)" + sum +
                          R"(, \"y\": \"00000000\"}"}, )" + tensor + "}",
                      kSixteenBytes);
  EXPECT_TRUE(contains(message, "metadata 'moe.crc32' names tensor 'y', which "
                                "the file does not hold"))
      << message;
  message =
      readError("notjson.safetensors",
                R"({"__metadata__": {"moe.crc32": "[1"}, )" + tensor + "}",
                kSixteenBytes);
  EXPECT_TRUE(contains(message, "metadata 'moe.crc32'")) << message;
  message =
      readError("upper.safetensors",
                R"({"__metadata__": {"moe.crc32": "{\"x\": \"ECBB4B55\"}"}, )" +
                    tensor + "}",
                kSixteenBytes);
  EXPECT_TRUE(contains(message, "the checksum of 'x' is \"ECBB4B55\", not 8 "
                                "lowercase hex digits"))
      << message;
  // Metadata other than the record is checksummed too.
  message = readError("metadata.safetensors",
                      R"({"__metadata__": {"format": "pt", "moe.crc32": "{)" +
                          sum + R"(}"}, )" + tensor + "}",
                      kSixteenBytes);
  EXPECT_TRUE(contains(message, "metadata.safetensors: its metadata is "
                                "damaged: its bytes' CRC-32 is "))
      << message;
}

TEST_F(SafetensorsTest, RefusesAHeaderKeyGivenTwice) {
  std::string message = readError(
      "twice.safetensors",
      R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, )"
      R"("x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "twice.safetensors: header: 'x' appears twice"))
      << message;
}

TEST_F(SafetensorsTest, ReadsFileWithoutMetadataOrTensors) {
  std::string path = writeRaw("empty.safetensors", "{}", "");
  SafetensorsReader reader(path);
  EXPECT_TRUE(reader.getTensors().empty());
  EXPECT_TRUE(reader.getMetadata().empty());
}

TEST_F(SafetensorsTest, ReferenceTensorsRoundTripThroughViews) {
  using mlir::moe::ref::Tensor;
  Tensor weights{DType::F32, {2, 2}, {0.5, -1.25, 2.0, 8.0}};
  Tensor ids{DType::I32, {3}, {7, -1, 0}};
  Tensor big{DType::I64, {1}, {1099511627777.0}}; // 2^40 + 1
  std::vector<std::vector<char>> storage;
  std::vector<TensorView> views = mlir::moe::ref::viewsOf(
      {{"w", &weights}, {"ids", &ids}, {"big", &big}}, storage);
  std::string path = pathOf("ref.safetensors");
  moert::writeSafetensors(path, views);

  SafetensorsReader reader(path);
  ASSERT_NE(reader.find("w"), nullptr);
  ASSERT_NE(reader.find("ids"), nullptr);
  ASSERT_NE(reader.find("big"), nullptr);
  Tensor w = Tensor::fromView(*reader.find("w"));
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.shape, weights.shape);
  EXPECT_EQ(w.data, weights.data);
  Tensor readIds = Tensor::fromView(*reader.find("ids"));
  EXPECT_EQ(readIds.dtype, DType::I32);
  EXPECT_EQ(readIds.data, ids.data);
  EXPECT_EQ(Tensor::fromView(*reader.find("big")).data, big.data);
}

//===----------------------------------------------------------------------===//
// Refused files
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RefusesMissingFile) {
  std::string path = pathOf("absent.safetensors");
  std::string message = errorOf([&] { SafetensorsReader reader(path); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "cannot open")) << message;
}

TEST_F(SafetensorsTest, RefusesFileShorterThanHeaderLength) {
  std::string path = writeBytes("short.safetensors", std::string(5, '\0'));
  std::string message = errorOf([&] { SafetensorsReader reader(path); });
  EXPECT_TRUE(contains(message, "5 bytes")) << message;
  EXPECT_TRUE(contains(message, "too short")) << message;
}

TEST_F(SafetensorsTest, RefusesHeaderLengthBeyondFile) {
  // Claims a 100-byte header, but only 2 bytes follow the length.
  std::string message = readError("long.safetensors", "{}", "", 100);
  EXPECT_TRUE(contains(message, "header length 100")) << message;
  EXPECT_TRUE(contains(message, "exceeds the 2 bytes after it")) << message;
}

TEST_F(SafetensorsTest, RefusesHeaderLengthBeyondAnyHeader) {
  // A text's first 8 bytes, read as a length; the metadata reader reads no
  // more than 8 bytes of such a file, and must not report those as its size.
  std::string path = writeBytes("text.txt", std::string(64, 'a'));
  for (const std::string &message :
       {errorOf([&] { SafetensorsReader reader(path); }),
        errorOf([&] { moert::readSafetensorsMetadata(path); })})
    EXPECT_TRUE(contains(message, "exceeds the 104857600 bytes a header may "
                                  "have"))
        << message;
}

TEST_F(SafetensorsTest, RefusesHeaderThatIsNotJson) {
  std::string message = readError("garbage.safetensors", "not json at all", "");
  EXPECT_TRUE(
      contains(message, "garbage.safetensors: header:1:2: invalid JSON"))
      << message;
}

TEST_F(SafetensorsTest, RefusesHeaderWithNulByte) {
  // JSON's parser would end the header at the NUL and ignore what follows.
  const char header[] = "{}\0GARBAGE{\"not json \xff";
  std::string message =
      readError("nul.safetensors", std::string(header, sizeof header - 1), "");
  EXPECT_TRUE(contains(message,
                       "nul.safetensors: header:1:3: invalid JSON: a NUL byte"))
      << message;
}

TEST_F(SafetensorsTest, RefusesJsonHeaderThatIsNotAnObject) {
  std::string message = readError("array.safetensors", "[1, 2]", "");
  EXPECT_TRUE(contains(message, "not a JSON object")) << message;
}

TEST_F(SafetensorsTest, RefusesUnsupportedDType) {
  std::string message = readError(
      "fp8.safetensors",
      R"({"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})",
      std::string(2, '\0'));
  EXPECT_TRUE(contains(message, "'w'")) << message;
  EXPECT_TRUE(contains(message, "unsupported dtype 'F8_E4M3'")) << message;
}

TEST_F(SafetensorsTest, RefusesDataOffsetsBeyondData) {
  // [4] f32 needs 16 bytes, but the file was truncated after 8.
  std::string message = readError(
      "truncated.safetensors",
      R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
      std::string(8, '\0'));
  EXPECT_TRUE(contains(message, "'w'")) << message;
  EXPECT_TRUE(contains(message, "[0, 16]")) << message;
  EXPECT_TRUE(contains(message, "truncated")) << message;
}

TEST_F(SafetensorsTest, RefusesReversedDataOffsets) {
  std::string message = readError(
      "reversed.safetensors",
      R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "data_offsets [8, 4] end before they begin"))
      << message;
}

TEST_F(SafetensorsTest, RefusesSpanThatDisagreesWithDTypeAndShape) {
  // [3] f64 needs 24 bytes; the offsets span 16.
  std::string message = readError(
      "span.safetensors",
      R"({"w": {"dtype": "F64", "shape": [3], "data_offsets": [0, 16]}})",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "'w'")) << message;
  EXPECT_TRUE(contains(message, "span 16 bytes")) << message;
  EXPECT_TRUE(contains(message, "need 24")) << message;
}

TEST_F(SafetensorsTest, RefusesOverlappingTensors) {
  // a covers bytes [0, 8), b covers [4, 12).
  std::string message = readError(
      "overlap.safetensors",
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
      R"( "b": {"dtype": "I32", "shape": [2], "data_offsets": [4, 12]}})",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "'a'")) << message;
  EXPECT_TRUE(contains(message, "'b'")) << message;
  EXPECT_TRUE(contains(message, "overlap")) << message;
}

TEST_F(SafetensorsTest, RefusesShapesWhoseSizeOverflows) {
  // 2^32 * 2^32 elements wrap to 0 in 64 bits.
  std::string message =
      readError("overflow.safetensors",
                R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296],)"
                R"( "data_offsets": [0, 0]}})",
                "");
  EXPECT_TRUE(contains(message, "too many elements")) << message;
}

TEST_F(SafetensorsTest, RefusesHoles) {
  // a covers [0, 4), b [8, 16): bytes 4-7 belong to nobody.
  std::string message = readError(
      "hole.safetensors",
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "b": {"dtype": "I32", "shape": [2], "data_offsets": [8, 16]}})",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "'b' starts at data byte 8")) << message;
  EXPECT_TRUE(contains(message, "a hole")) << message;
}

TEST_F(SafetensorsTest, AcceptsAdjacentTensors) {
  // a covers [0, 8), b covers [8, 16): touching is not overlapping.
  std::string path = writeRaw(
      "adjacent.safetensors",
      R"({"b": {"dtype": "I32", "shape": [2], "data_offsets": [8, 16]},)"
      R"( "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
      kSixteenBytes);
  SafetensorsReader reader(path);
  EXPECT_EQ(reader.getTensors().size(), 2u);
}

TEST_F(SafetensorsTest, AcceptsEmptyTensorsWhereOthersStart) {
  // b and c hold no bytes at the starts of a and d, after them by name.
  std::string path = writeRaw(
      "empty.safetensors",
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
      R"( "b": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},)"
      R"( "c": {"dtype": "F32", "shape": [2, 0], "data_offsets": [8, 8]},)"
      R"( "d": {"dtype": "I32", "shape": [2], "data_offsets": [8, 16]}})",
      kSixteenBytes);
  SafetensorsReader reader(path);
  EXPECT_EQ(reader.getTensors().size(), 4u);
}

TEST_F(SafetensorsTest, RefusesNegativeShapeEntry) {
  std::string message = readError(
      "negative.safetensors",
      R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
      kSixteenBytes);
  EXPECT_TRUE(contains(message, "non-negative")) << message;
}

TEST_F(SafetensorsTest, RefusesShapeWhoseByteCountOverflows) {
  // [2^61] f64 needs 2^64 bytes, which cannot be backed by the 0 bytes the
  // offsets give; the byte count must not wrap around to 0 and be accepted.
  std::string message =
      readError("overflow.safetensors",
                R"({"w": {"dtype": "F64", "shape": [2305843009213693952],)"
                R"( "data_offsets": [0, 0]}})",
                kSixteenBytes);
  EXPECT_TRUE(contains(message, "'w'")) << message;
}

TEST_F(SafetensorsTest, RefusesShapeWhoseElementCountOverflows) {
  // 2^32 * 2^32 = 2^64 elements overflow int64_t; the file must be refused,
  // not accepted with a wrapped element count of 0.
  std::string message =
      readError("overflow.safetensors",
                R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296],)"
                R"( "data_offsets": [0, 0]}})",
                kSixteenBytes);
  EXPECT_TRUE(contains(message, "'w'")) << message;
}

TEST_F(SafetensorsTest, RefusesNonStringMetadata) {
  std::string message =
      readError("meta.safetensors", R"({"__metadata__": {"step": 3}})", "");
  EXPECT_TRUE(contains(message, "metadata 'step'")) << message;
}

//===----------------------------------------------------------------------===//
// Atomic writes
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryThrows) {
  const float value[] = {1.0f};
  std::string path = pathOf("no-such-dir/model.safetensors");
  std::string message = errorOf([&] {
    moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(listDir().empty());
}

TEST_F(SafetensorsTest, OverwriteReplacesFileAndLeavesNoTemporary) {
  const float first[] = {1.0f, 2.0f};
  const double second[] = {3.0};
  std::string path = pathOf("model.safetensors");
  moert::writeSafetensors(path, {{"old", DType::F32, {2}, first}});
  moert::writeSafetensors(path, {{"new", DType::F64, {1}, second}},
                          {{"version", "2"}});

  SafetensorsReader reader(path);
  ASSERT_EQ(reader.getTensors().size(), 1u);
  EXPECT_EQ(reader.find("old"), nullptr);
  ASSERT_NE(reader.find("new"), nullptr);
  EXPECT_EQ(valuesOf<double>(*reader.find("new")), std::vector<double>{3.0});
  EXPECT_EQ(reader.getMetadata().at("version"), "2");
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, FailedWriteKeepsExistingFile) {
  const float good[] = {1.0f, 2.0f};
  std::string path = pathOf("model.safetensors");
  moert::writeSafetensors(path, {{"w", DType::F32, {2}, good}});

  // A tensor named twice is refused; the existing file must survive intact.
  const float bad[] = {9.0f};
  std::string message = errorOf([&] {
    moert::writeSafetensors(
        path, {{"w", DType::F32, {1}, bad}, {"w", DType::F32, {1}, bad}});
  });
  EXPECT_TRUE(contains(message, "written twice")) << message;

  SafetensorsReader reader(path);
  ASSERT_NE(reader.find("w"), nullptr);
  EXPECT_EQ(valuesOf<float>(*reader.find("w")),
            (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, ReplacesOnlyRegularFiles) {
  // A rename would put a regular file where a directory, a FIFO or a
  // device was.
  std::string directory = pathOf("directory.safetensors");
  std::string fifo = pathOf("fifo.safetensors");
  ASSERT_EQ(mkdir(directory.c_str(), 0755), 0);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const float value[] = {1.0f};
  for (const std::string &path : {directory, fifo}) {
    std::string message = errorOf([&] {
      moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
    });
    EXPECT_TRUE(contains(message, path + ": not a regular file")) << message;
  }
  struct stat status;
  ASSERT_EQ(stat(fifo.c_str(), &status), 0);
  EXPECT_TRUE(S_ISFIFO(status.st_mode));
  EXPECT_EQ(listDir(), (std::vector<std::string>{"directory.safetensors",
                                                 "fifo.safetensors"}));
}

TEST_F(SafetensorsTest, RefusesToReplaceAFileOfAnotherKind) {
  // A mistyped output path must not destroy the training data.
  std::string path = pathOf("data.txt");
  std::ofstream(path) << "First Citizen:\nBefore we proceed any further";
  const float value[] = {1.0f};
  std::string message = errorOf([&] {
    moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  });
  EXPECT_TRUE(
      contains(message, path + ": exists and is not a safetensors file ("))
      << message;
  EXPECT_TRUE(contains(message, "): not replacing it")) << message;
  std::ifstream in(path);
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(kept, "First Citizen:\nBefore we proceed any further");
  EXPECT_EQ(listDir(), std::vector<std::string>{"data.txt"});
}

TEST_F(SafetensorsTest, ReplacesAnEmptyFile) {
  // mktemp's empty file is a fine place to write to.
  std::string path = pathOf("empty.safetensors");
  std::ofstream(path).close();
  const float value[] = {1.0f};
  moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  SafetensorsReader reader(path);
  EXPECT_NE(reader.find("x"), nullptr);
}

TEST_F(SafetensorsTest, ReplacingKeepsTheFileMode) {
  const float value[] = {1.0f};
  std::string path = pathOf("model.safetensors");
  moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  struct stat status;
  ASSERT_EQ(stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0600u);
}

/// Whether writing `path` as user nobody (from a child process, when this
/// one is root) fails with a message that contains `expected`.
static bool refusedToNobody(const std::string &path,
                            const std::string &expected) {
  pid_t child = fork();
  if (child == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
      _exit(2);
    const float value[] = {1.0f};
    std::string message = errorOf([&] {
      moert::writeSafetensors(path, {{"y", DType::F32, {1}, value}});
    });
    _exit(contains(message, expected) ? 0 : 1);
  }
  int status = 0;
  return child > 0 && waitpid(child, &status, 0) == child &&
         WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(SafetensorsTest, RefusesToReplaceAReadOnlyFile) {
  // The rename needs only the directory's write permission: the file's
  // must be checked.
  const float value[] = {1.0f};
  std::string path = pathOf("model.safetensors");
  moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  ASSERT_EQ(chmod(directory.path().c_str(), 0777), 0);
  EXPECT_TRUE(refusedToNobody(path, path + ": not writable"));
  // Root passes access(); the mode still says to keep the file.
  if (geteuid() == 0) {
    EXPECT_TRUE(contains(
        errorOf([&] {
          moert::writeSafetensors(path, {{"y", DType::F32, {1}, value}});
        }),
        path + ": read-only (mode 0444)"));
  }
  EXPECT_NE(SafetensorsReader(path).find("x"), nullptr);
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, RefusesAnotherUsersFileInAStickyFolder) {
  // In a sticky folder the rename over another user's file fails, even a
  // file that the user may write: refused before the work instead.
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root, to write as a second user";
  const float value[] = {1.0f};
  std::string path = pathOf("model.safetensors");
  moert::writeSafetensors(path, {{"x", DType::F32, {1}, value}});
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  ASSERT_EQ(chmod(directory.path().c_str(), 01777), 0);
  EXPECT_TRUE(refusedToNobody(path, path + ": in a sticky folder"));
  EXPECT_NE(SafetensorsReader(path).find("x"), nullptr);
  EXPECT_EQ(listDir(), std::vector<std::string>{"model.safetensors"});
}
