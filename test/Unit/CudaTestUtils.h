//===- CudaTestUtils.h - helpers of the CUDA kernel tests -------*- C++ -*-===//
//
// The CUDA kernels (moert/CudaKernels.h) are compared with the CPU kernels
// (moert/CpuKernels.h), the f32 reference of the CUDA target, on the same
// inputs. A fixture skips every test where no CUDA device is usable, so the
// binary also lists its tests (gtest_discover_tests) on a machine without
// one; device buffers are uploaded and downloaded on the kernels' stream.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_CUDATESTUTILS_H
#define MOE_TEST_UNIT_CUDATESTUTILS_H

#include "moert/CudaKernels.h"
#include "moert/CudaTarget.h"
#include "moert/Error.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace moe::cudatest {

using Floats = std::vector<float>;
using Ids = std::vector<int32_t>;
using Longs = std::vector<int64_t>;

//===----------------------------------------------------------------------===//
// The device.
//===----------------------------------------------------------------------===//

/// Why no CUDA device is usable here, or "" when one is.
inline const std::string &noDeviceReason() {
  static const std::string reason = [] {
    int devices = 0;
    cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess)
      return std::string(cudaGetErrorString(status));
    return devices == 0 ? std::string("no device found") : std::string();
  }();
  return reason;
}

/// The fixture of every CUDA kernel test: skipped without a device, and a
/// test that leaves a device error behind fails rather than the next one.
class CudaTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (!noDeviceReason().empty())
      GTEST_SKIP() << "no CUDA device: " << noDeviceReason();
  }
  void TearDown() override {
    if (noDeviceReason().empty()) {
      EXPECT_NO_THROW(moert::cuda::checkDeviceErrors())
          << "a device error was left behind";
    }
  }
};

inline void checkCuda(cudaError_t status, const char *what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("CUDA: ") + what +
                             " failed: " + cudaGetErrorString(status));
}

/// Waits for the kernels' stream and raises their device errors.
inline void synchronize() { moert::cuda::checkDeviceErrors(); }

/// What an output holds before a kernel runs, so that an element it leaves
/// unwritten shows: NaN for floats, -7 for integers.
template <typename T> T unwritten() {
  if constexpr (std::is_floating_point_v<T>)
    return std::numeric_limits<T>::quiet_NaN();
  else
    return T(-7);
}

/// A device array, uploaded from and downloaded to host vectors on the
/// kernels' stream.
template <typename T> class DeviceBuffer {
public:
  /// `count` elements, each `fill`.
  explicit DeviceBuffer(int64_t count, T fill = unwritten<T>())
      : DeviceBuffer(std::vector<T>(static_cast<size_t>(count), fill)) {}
  explicit DeviceBuffer(const std::vector<T> &host)
      : count(static_cast<int64_t>(host.size())) {
    void *memory = nullptr;
    checkCuda(cudaMalloc(&memory, std::max<size_t>(host.size(), 1) * sizeof(T)),
              "cudaMalloc");
    data = static_cast<T *>(memory);
    upload(host);
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  DeviceBuffer(DeviceBuffer &&other) noexcept
      : data(other.data), count(other.count) {
    other.data = nullptr;
    other.count = 0;
  }
  DeviceBuffer &operator=(DeviceBuffer &&) = delete;
  ~DeviceBuffer() {
    if (!data)
      return;
    // Kernels still in flight may use it.
    cudaStreamSynchronize(moert::cuda::stream());
    cudaFree(data);
  }

  T *get() const { return data; }
  int64_t size() const { return count; }

  /// Replaces the contents (same size) once the stream has caught up.
  void upload(const std::vector<T> &host) {
    if (static_cast<int64_t>(host.size()) != count)
      throw std::logic_error("DeviceBuffer::upload: size mismatch");
    cudaStream_t s = moert::cuda::stream();
    checkCuda(cudaMemcpyAsync(data, host.data(), host.size() * sizeof(T),
                              cudaMemcpyHostToDevice, s),
              "cudaMemcpyAsync (upload)");
    checkCuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (upload)");
  }

  /// The contents after every kernel enqueued so far; raises their device
  /// errors (moert::Error) first.
  std::vector<T> download() const {
    cudaStream_t s = moert::cuda::stream();
    checkCuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (kernels)");
    synchronize();
    std::vector<T> host(static_cast<size_t>(count));
    checkCuda(cudaMemcpyAsync(host.data(), data, host.size() * sizeof(T),
                              cudaMemcpyDeviceToHost, s),
              "cudaMemcpyAsync (download)");
    checkCuda(cudaStreamSynchronize(s), "cudaStreamSynchronize (download)");
    return host;
  }
  /// The one element of a 0-d result.
  T value() const { return download().at(0); }

private:
  T *data = nullptr;
  int64_t count = 0;
};

/// A 0-d input on the device.
template <typename T> DeviceBuffer<T> scalar(T value) {
  return DeviceBuffer<T>(std::vector<T>{value});
}

//===----------------------------------------------------------------------===//
// Errors.
//===----------------------------------------------------------------------===//

/// The message of the moert::Error that `fn` throws, or "" if none (the
/// CPU kernels throw at once).
inline std::string errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const moert::Error &error) {
    return error.what();
  }
  return "";
}

/// Expects `launch` to raise moert::Error (at once or, from the device, on
/// the next synchronization) with the message `expected`.
inline void expectDeviceError(const std::function<void()> &launch,
                              const std::string &expected,
                              const std::string &what) {
  ASSERT_FALSE(expected.empty()) << what << ": the CPU kernel did not throw";
  std::string message;
  auto run = [&] {
    try {
      launch();
      synchronize();
    } catch (const moert::Error &error) {
      message = error.what();
      throw;
    }
  };
  EXPECT_THROW(run(), moert::Error) << what;
  EXPECT_EQ(message, expected) << what;
  // Raising clears the device error word.
  EXPECT_NO_THROW(synchronize()) << what << ": error word not cleared";
}

//===----------------------------------------------------------------------===//
// Inputs.
//===----------------------------------------------------------------------===//

inline Floats randomFloats(int64_t count, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Floats values(static_cast<size_t>(count));
  for (float &value : values)
    value = normal(rng);
  return values;
}

inline Ids randomIds(int64_t count, int32_t bound, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> uniform(0, bound - 1);
  Ids ids(static_cast<size_t>(count));
  for (int32_t &id : ids)
    id = uniform(rng);
  return ids;
}

/// k distinct experts per token, as a gate picks them.
inline Ids randomChoices(int64_t tokens, int64_t experts, int64_t topK,
                         uint32_t seed) {
  std::mt19937 rng(seed);
  Ids order(static_cast<size_t>(experts)), ids;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t e = 0; e < experts; ++e)
      order[e] = static_cast<int32_t>(e);
    std::shuffle(order.begin(), order.end(), rng);
    ids.insert(ids.end(), order.begin(), order.begin() + topK);
  }
  return ids;
}

/// Outputs of the CPU kernels start as NaN too.
inline Floats output(int64_t count) {
  return Floats(static_cast<size_t>(count), unwritten<float>());
}

/// An MoE layer's shape.
struct Shape {
  int64_t tokens, hidden, experts, topK, ffn;
  std::string name() const {
    return std::to_string(tokens) + "x" + std::to_string(hidden) + " e" +
           std::to_string(experts) + " k" + std::to_string(topK) + " f" +
           std::to_string(ffn);
  }
};

// The CPU tests' shapes (one expert, sizes off the vector widths, the
// benchmark's 768 tokens whose 1536 assignments span more than one
// 1024-thread chunk), a hidden size past 4 warps' lanes and a top-k wider
// than a warp.
inline const Shape kShapes[] = {
    {1, 1, 1, 1, 1},    {5, 3, 4, 2, 7},      {37, 17, 6, 3, 23},
    {64, 32, 8, 2, 40}, {100, 20, 16, 4, 33}, {768, 128, 8, 2, 352},
    {50, 9, 5, 5, 17},  {33, 130, 8, 2, 70},  {20, 5, 40, 34, 3}};

inline std::string shapeName(std::initializer_list<int64_t> sizes) {
  std::string name;
  for (int64_t size : sizes)
    name += (name.empty() ? "" : "x") + std::to_string(size);
  return name;
}

//===----------------------------------------------------------------------===//
// Comparisons.
//===----------------------------------------------------------------------===//

/// Within `relative` of the largest expected magnitude (f32 sums in another
/// order); NaN anywhere fails.
inline void expectClose(const Floats &actual, const Floats &expected,
                        const std::string &what, double relative = 1e-5) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double largest = 0;
  for (float value : expected)
    largest = std::max(largest, std::abs(static_cast<double>(value)));
  double tolerance = relative * std::max(largest, 1e-30);
  int64_t bad = 0, worst = -1;
  double worstError = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    double error = std::abs(static_cast<double>(actual[i]) - expected[i]);
    if (error <= tolerance)
      continue;
    ++bad;
    if (worst < 0 || !(error <= worstError)) {
      worst = static_cast<int64_t>(i);
      worstError = error;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": worst at " << worst << ": "
                    << (worst >= 0 ? actual[worst] : 0.0f) << " vs "
                    << (worst >= 0 ? expected[worst] : 0.0f) << " (tolerance "
                    << tolerance << ")";
}

inline void expectScalarClose(float actual, float expected,
                              const std::string &what, double relative = 1e-5,
                              double floor = 1e-30) {
  EXPECT_NEAR(actual, expected,
              relative *
                  std::max(floor, std::abs(static_cast<double>(expected))))
      << what;
}

/// Element for element equal (routing decisions, copies).
template <typename T>
inline void expectExact(const std::vector<T> &actual,
                        const std::vector<T> &expected,
                        const std::string &what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_EQ(actual[i], expected[i]) << what << " at " << i;
}

template <typename T>
inline void expectBitwiseEqual(const std::vector<T> &a, const std::vector<T> &b,
                               const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0)
      << what << " differs between two runs";
}

/// The rows [e, r < counts[e]) of an [experts, capacity, width] buffer,
/// concatenated.
inline Floats filledRows(const Floats &buffer, const Longs &counts,
                         int64_t capacity, int64_t width) {
  Floats rows;
  for (size_t e = 0; e < counts.size(); ++e)
    rows.insert(rows.end(), buffer.begin() + e * capacity * width,
                buffer.begin() + (e * capacity + counts[e]) * width);
  return rows;
}

} // namespace moe::cudatest

#endif // MOE_TEST_UNIT_CUDATESTUTILS_H
