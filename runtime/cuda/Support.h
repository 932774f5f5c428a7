//===- Support.h - what every CUDA kernel file uses -------------*- C++ -*-===//
//
// The step's stream and cuBLAS handle, the scratch workspace, launch
// checks, and the device error word through which kernels report bad
// indices (a device cannot throw). Internal to moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_SUPPORT_H
#define MOERT_CUDA_SUPPORT_H

#include "moert/CudaTarget.h"
#include "moert/Error.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace moert::cuda {

/// The cuBLAS handle bound to stream(), in pedantic f32 math (no TF32), with
/// a fixed workspace so that it can be captured in a graph.
cublasHandle_t blas();
/// The handle of GEMMs with bf16 operands: tensor cores, f32 accumulation.
cublasHandle_t mixedBlas();

/// `bytes` of device scratch, valid until the next call. It grows only
/// outside graph capture: the first (eager) call of a step sizes it.
void *workspace(size_t bytes);

/// Throws moert::Error naming `what` when `status` is an error.
void check(cudaError_t status, const char *what);
void check(cublasStatus_t status, const char *what);

/// Whether 16-byte vector accesses (float4, uint4) may start at `pointer`.
inline bool aligned16(const void *pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % 16 == 0;
}

/// The shared memory a block may have on every GPU the binaries run on:
/// sm_86, sm_89 and sm_120 allow least (sm_80 and sm_90 over 160 KiB).
/// Kernels that run on all of them check their size against it when they
/// compile (the sm_90a-only wgmma GEMM may use more).
constexpr size_t kPortableSharedBytes = 99 * 1024;

/// Raises `kernel`'s dynamic shared memory limit (over the default 48 KiB)
/// to `bytes`, which the GPU must allow a block; returns the bytes.
template <typename Kernel>
size_t allowSharedBytes(Kernel kernel, size_t bytes, const char *what) {
  int device = 0, limit = 0;
  check(cudaGetDevice(&device), what);
  check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                               device),
        what);
  if (bytes > static_cast<size_t>(limit))
    moert::fail("{}: the kernel needs {} bytes of shared memory a block, this "
                "GPU allows {}",
                what, bytes, limit);
  check(cudaFuncSetAttribute(kernel,
                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(bytes)),
        what);
  return bytes;
}

constexpr int kThreads = 256;
/// The one block of a single-block reduction (its kernels say so in
/// __launch_bounds__, so that registers never limit it below this).
constexpr int kReduceThreads = 1024;
/// Blocks of kThreads for a grid-stride loop over `count` elements.
inline unsigned blocksFor(int64_t count) {
  int64_t blocks = (count + kThreads - 1) / kThreads;
  if (blocks < 1)
    blocks = 1;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

/// A grid-stride loop's indices: `for (int64_t i : gridStride(count))`.
struct GridStride {
  struct Iterator {
    int64_t index, step;
    __device__ int64_t operator*() const { return index; }
    __device__ Iterator &operator++() {
      index += step;
      return *this;
    }
    __device__ bool operator!=(const Iterator &end) const {
      return index < end.index;
    }
  };
  int64_t count;
  __device__ Iterator begin() const {
    return {int64_t(blockIdx.x) * blockDim.x + threadIdx.x,
            int64_t(gridDim.x) * blockDim.x};
  }
  __device__ Iterator end() const { return {count, 0}; }
};
__device__ inline GridStride gridStride(int64_t count) { return {count}; }

/// Grid-stride loops of one warp per item, over blocks of kThreads.
constexpr int kWarpsPerBlock = kThreads / 32;
__device__ inline int64_t warpId() {
  return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
}
__device__ inline int64_t warpStride() {
  return int64_t(gridDim.x) * blockDim.x / 32;
}
inline unsigned warpBlocks(int64_t count) { return blocksFor(count * 32); }

/// Pointer or size lists passed by value in a launch's parameters (a host
/// array would be gone when a captured graph replays).
template <typename T, int N> struct ParameterArray { T items[N]; };
constexpr int kListChunk = 64;

//===----------------------------------------------------------------------===//
// Device errors: the first bad index a kernel meets, raised on the host by
// checkDeviceErrors() with the CPU kernels' message.
//===----------------------------------------------------------------------===//

enum class DeviceCheck : int32_t {
  None,
  TokenId,     // op: token id {0} is outside [0, {1})
  Target,      // op: target {0} is outside [0, {1})
  ExpertIndex, // op: expert index {0} is outside [0, {1})
  Slot,        // op: slot {0} is outside [0, {1})
  ExpertCount, // op: count {0} of expert {1} is outside [0, {2}]
  RunFit,      // op: rank {0}'s run of {1} rows for expert {2} does not fit
               // runs of {3} rows or a queue of {4} rows
};

enum class CheckedOp : int32_t {
  Embedding,
  CrossEntropy,
  Gate,
  Dispatch,
  Route,
  Place,
  Combine,
  AuxLoss,
  PooledAuxLoss,
  RoutingMetrics,
  ExpertFfn,
  MergeRuns,
  SplitRuns,
  ExpertLoad,
};

struct DeviceError {
  int32_t check; // DeviceCheck; None while no error was met
  int32_t op;    // CheckedOp
  int64_t values[5];
};

/// The device error word (device memory).
DeviceError *deviceErrors();

/// Records the first error; later ones are dropped.
__device__ inline void reportError(DeviceError *error, DeviceCheck check,
                                   CheckedOp op, int64_t v0, int64_t v1,
                                   int64_t v2 = 0, int64_t v3 = 0,
                                   int64_t v4 = 0) {
  if (atomicCAS(&error->check, 0, static_cast<int32_t>(check)) != 0)
    return;
  error->op = static_cast<int32_t>(op);
  error->values[0] = v0;
  error->values[1] = v1;
  error->values[2] = v2;
  error->values[3] = v3;
  error->values[4] = v4;
}

/// Whether 0 <= index < bound; reports `check` otherwise.
__device__ inline bool checkIndex(DeviceError *error, DeviceCheck check,
                                  CheckedOp op, int64_t index, int64_t bound) {
  if (index >= 0 && index < bound)
    return true;
  reportError(error, check, op, index, bound);
  return false;
}

} // namespace moert::cuda

#endif // MOERT_CUDA_SUPPORT_H
