//===- CudaTarget.h - the model ABI's CUDA target ---------------*- C++ -*-===//
//
// The moe_target of models compiled for NVIDIA GPUs (moe-translate
// --emit=cuda): device memory, one stream, and what generated host code
// needs besides the kernels: device copies of its constants and row-count
// arrays, the CUDA graph that holds a whole function call, and the timer of
// --profile.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDATARGET_H
#define MOERT_CUDATARGET_H

#include "moert/Bf16.h"
#include "moert/ModelAbi.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

extern "C" const moe_target moe_cuda_target;

namespace moert::cuda {

/// The stream every kernel of a step is enqueued on.
cudaStream_t stream();
/// Raises moert::Error naming `kernel` when its launch failed.
void checkLaunch(const char *kernel);

/// A device copy of `count` values at `host`, made once per call site (the
/// generated code keeps it in a function-local static).
float *uploadConstant(const float *host, int64_t count);
int32_t *uploadConstant(const int32_t *host, int64_t count);
int64_t *uploadConstant(const int64_t *host, int64_t count);
moert::bf16 *uploadConstant(const moert::bf16 *host, int64_t count);
/// A device array of `count` row counts, each `fill` when it is >= 0.
int64_t *deviceRowCounts(int64_t count, int64_t fill);
/// Copies `bytes` bytes between device buffers, on the step's stream.
void copy(void *destination, const void *source, int64_t bytes);
/// Sets `bytes` bytes of a device buffer to zero, on the step's stream.
void zero(void *destination, int64_t bytes);
/// Raises the first bad index a kernel reported as moert::Error (after
/// waiting for the stream).
void checkDeviceErrors();

/// Times one kernel call of a function compiled with --profile into its
/// site: CUDA events around the call's launches on the step's stream,
/// whose elapsed time FunctionGraph adds to the site once the call has
/// finished. A profiled function runs eagerly (no graph), so every call is
/// timed.
class ProfileScope {
public:
  explicit ProfileScope(moe_profile_site &site);
  ~ProfileScope();
  ProfileScope(const ProfileScope &) = delete;
  ProfileScope &operator=(const ProfileScope &) = delete;

private:
  moe_profile_site &site;
  cudaEvent_t start, stop;
};

/// One model function's calls as a CUDA graph: the first call runs `body`
/// eagerly (sizing the workspace and checking every launch), later calls
/// capture it once per set of buffers (`key`: the state, the arena, the
/// inputs and the outputs) and replay the graph, captured again when the
/// workspace was reallocated since. MOE_CUDA_GRAPHS=0 keeps every call
/// eager, and so does a body that opened ProfileScopes: each eager call
/// then waits for its kernels and adds their times to the sites.
class FunctionGraph {
public:
  FunctionGraph();
  FunctionGraph(const FunctionGraph &) = delete;
  FunctionGraph &operator=(const FunctionGraph &) = delete;
  ~FunctionGraph();

  void run(std::initializer_list<const void *> key,
           const std::function<void()> &body);
  /// Destroys the captured graph, if any; the next call captures again.
  void release();

private:
  std::vector<const void *> capturedKey;
  uint64_t capturedGeneration = 0;
  void *graph = nullptr; // cudaGraphExec_t
  bool warmedUp = false, profiled = false;
};

/// Releases every FunctionGraph's graph. A graph that captured NCCL calls
/// holds a reference on the communicator, and ncclCommDestroy waits until
/// none is left: leaving the process group releases them first.
void releaseGraphs();

} // namespace moert::cuda

#endif // MOERT_CUDATARGET_H
