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

#include "ErrorTestUtils.h"
#include "KernelTestUtils.h"
#include "moert/CpuKernels.h"
#include "moert/CudaKernels.h"
#include "moert/CudaTarget.h"
#include "moert/Error.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace moe::cudatest {

// What the CPU kernel tests share (ErrorTestUtils.h, KernelTestUtils.h).
using test::AdamWCase;
using test::adamwCases;
using test::AttentionCase;
using test::AttentionInputs;
using test::attentionInputs;
using test::errorOf;
using test::expectBitwiseEqual;
using test::expectClose;
using test::expertCapacity;
using test::filledRows;
using test::Floats;
using test::gateConfig;
using test::Ids;
using test::kRopeCases;
using test::logitsWithUnderflowingRow;
using test::mixedFills;
using test::output;
using test::randomChoices;
using test::randomFloats;
using test::randomIds;
using test::RopeCase;
using test::Shape;
using test::shapeName;
using test::similarExperts;

using Longs = std::vector<int64_t>;

// The two targets the tests compare.
namespace cpu = moert::cpu;
namespace gpu = moert::cuda;

/// GEMMs, grouped GEMMs and attention sum in another order than the CPU's
/// (oneDNN).
inline constexpr double kGemmTolerance = 1e-4;

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

/// The fixture of every CUDA kernel test: skipped without a device (failed
/// instead where MOE_REQUIRE_GPU is set, as scripts/gpu-check.sh sets it: a
/// GPU that the driver cannot use must not pass as skipped tests), and a
/// test that leaves a device error behind fails rather than the next one.
class CudaTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (noDeviceReason().empty())
      return;
    if (std::getenv("MOE_REQUIRE_GPU"))
      FAIL() << "no usable CUDA device (MOE_REQUIRE_GPU is set): "
             << noDeviceReason();
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
/// unwritten shows: NaN for floats (bf16 too), -7 for integers.
template <typename T> T unwritten() {
  if constexpr (std::is_floating_point_v<T>)
    return std::numeric_limits<T>::quiet_NaN();
  else if constexpr (std::is_same_v<T, moert::bf16>)
    return moert::toBf16(std::numeric_limits<float>::quiet_NaN());
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

/// `shared` (the CPU tests' cases), then `more`.
template <typename T, size_t N>
std::vector<T> extended(const T (&shared)[N], std::initializer_list<T> more) {
  std::vector<T> all(std::begin(shared), std::end(shared));
  all.insert(all.end(), more);
  return all;
}

// The CPU tests' shapes (one expert, sizes off the vector widths, the
// benchmark's 768 tokens whose 1536 assignments span more than one
// 1024-thread chunk), a hidden size past 4 warps' lanes and a top-k wider
// than a warp.
inline const std::vector<Shape> kShapes =
    extended(test::kShapes, {{33, 130, 8, 2, 70}, {20, 5, 40, 34, 3}});

// The CPU tests' attention cases (one position, grouped queries 4 on 2, 6
// on 3 and 2 on 1, sizes off the vector widths, head_dim 200 over four
// 64-wide chunks, the benchmark's shape) and, for the 64 x 64 tiles: a
// sequence of two tiles and a query per kv head group of 4, one just past a
// tile with head_dim 256 (the f32 kernels' largest), a 129-long one, the
// head_dims of the bf16 kernels' largest build (128, that of Mixtral and
// the GPU benchmark; 96 padded to it), and 160, the f32 kernels' build of
// three chunks.
inline const std::vector<AttentionCase> kAttentionCases =
    extended(test::kAttentionCases, {{2, 128, 8, 2, 64},
                                     {1, 65, 2, 2, 256},
                                     {1, 129, 3, 1, 33},
                                     {2, 130, 4, 2, 128},
                                     {1, 70, 2, 1, 96},
                                     {1, 70, 2, 1, 160},
                                     // 16 key tiles of 64: the online
                                     // softmax rescales many times.
                                     {1, 1024, 2, 1, 128}});

//===----------------------------------------------------------------------===//
// Comparisons.
//===----------------------------------------------------------------------===//

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

/// Every buffer's contents.
template <typename T>
std::vector<std::vector<T>>
downloadAll(const std::vector<DeviceBuffer<T>> &buffers) {
  std::vector<std::vector<T>> host;
  for (const DeviceBuffer<T> &buffer : buffers)
    host.push_back(buffer.download());
  return host;
}

/// Sets a kernel choice's variable (MOE_CUDA_ATTENTION,
/// MOE_CUDA_GROUPED_GEMM) for its lifetime, then restores it.
class KernelChoice {
public:
  KernelChoice(const char *variable, const char *kernel) : variable(variable) {
    if (const char *setting = std::getenv(variable))
      previous = setting;
    setenv(variable, kernel, 1);
  }
  ~KernelChoice() {
    if (previous)
      setenv(variable, previous->c_str(), 1);
    else
      unsetenv(variable);
  }

private:
  const char *variable;
  std::optional<std::string> previous;
};

/// Two runs' outputs, output for output the same bits.
inline void expectRunsBitwiseEqual(const std::vector<Floats> &first,
                                   const std::vector<Floats> &second) {
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i)
    expectBitwiseEqual(first[i], second[i], "output " + std::to_string(i));
}

} // namespace moe::cudatest

#endif // MOE_TEST_UNIT_CUDATESTUTILS_H
