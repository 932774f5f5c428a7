//===- CudaTarget.cu - the model ABI's CUDA target ------------------------===//
//
// Device memory, the step's stream and cuBLAS handle, the workspace, the
// device error word, and the graphs that hold whole function calls. The
// process group (MPI for the ranks, NCCL for the collectives) is in
// Collectives.cu.
//
//===----------------------------------------------------------------------===//

#include "Collectives.h"
#include "Support.h"

#include "moert/CudaTarget.h"
#include "moert/Error.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

using namespace moert::cuda;

namespace {

/// For a call whose failure this code cannot act on (a release, a
/// destructor's event, a path already failing): clears the error that the
/// runtime keeps for cudaGetLastError, so that the next checkLaunch does not
/// report it under an unrelated kernel's name.
void dismiss(cudaError_t status) {
  if (status != cudaSuccess)
    cudaGetLastError();
}

/// What one process holds on its GPU, created on first use (after the
/// process group chose the device).
struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr, mixedBlas = nullptr;
  void *blasWorkspace = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = 0;
  /// Counts the workspace's reallocations: a graph captured before one
  /// holds the freed buffer.
  uint64_t workspaceGeneration = 0;
  DeviceError *errors = nullptr;
  /// The ProfileScopes closed since the last settleProfile, and events
  /// for reuse (creating one per call would cost more than the kernels).
  struct TimedCall {
    moe_profile_site *site;
    cudaEvent_t start, stop;
  };
  std::vector<TimedCall> timedCalls;
  std::vector<cudaEvent_t> spareEvents;

  Context() {
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
          "cudaStreamCreate");
    // A workspace of cuBLAS's own keeps it from allocating inside a graph
    // capture (32 MiB: what NVIDIA recommends for Hopper). Both handles
    // share it: they run on the one stream, one call after another.
    constexpr size_t kBlasWorkspace = size_t(32) << 20;
    check(cudaMalloc(&blasWorkspace, kBlasWorkspace), "cudaMalloc");
    for (cublasHandle_t *handle : {&blas, &mixedBlas}) {
      check(cublasCreate(handle), "cublasCreate");
      check(cublasSetStream(*handle, stream), "cublasSetStream");
      check(cublasSetWorkspace(*handle, blasWorkspace, kBlasWorkspace),
            "cublasSetWorkspace");
    }
    // Pedantic f32: the step must equal the reference to f32 rounding,
    // which TF32 tensor cores would not. bf16 operands go to tensor cores
    // (exact products, f32 sums); a bf16 result is rounded once, so split-K
    // partial sums stay f32 (the default would let cuBLAS reduce them in
    // the output's bf16).
    check(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    check(cublasSetMathMode(
              mixedBlas, static_cast<cublasMath_t>(
                             CUBLAS_DEFAULT_MATH |
                             CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
          "cublasSetMathMode");
    check(cudaMalloc(&errors, sizeof(DeviceError)), "cudaMalloc");
    // On the step's stream: cudaMemset would go to the legacy default
    // stream, which a non-blocking stream's kernels do not wait for.
    check(cudaMemsetAsync(errors, 0, sizeof(DeviceError), stream),
          "cudaMemsetAsync");
  }
};

Context &context() {
  static Context *instance = new Context; // lives until the process exits
  return *instance;
}

bool capturing() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(context().stream, &status),
        "cudaStreamIsCapturing");
  return status != cudaStreamCaptureStatusNone;
}

cudaEvent_t takeEvent() {
  Context &c = context();
  if (c.spareEvents.empty()) {
    cudaEvent_t event = nullptr;
    check(cudaEventCreate(&event), "cudaEventCreate (--profile)");
    return event;
  }
  cudaEvent_t event = c.spareEvents.back();
  c.spareEvents.pop_back();
  return event;
}

/// Adds the timed calls' times to their sites once their kernels are done;
/// returns whether there were any. Calls of a body that threw are added by
/// the next settle, which may be another function's.
bool settleProfile() {
  Context &c = context();
  if (c.timedCalls.empty())
    return false;
  std::vector<Context::TimedCall> calls;
  calls.swap(c.timedCalls);
  check(cudaEventSynchronize(calls.back().stop), "a profiled kernel");
  for (const Context::TimedCall &call : calls) {
    float milliseconds = 0;
    check(cudaEventElapsedTime(&milliseconds, call.start, call.stop),
          "cudaEventElapsedTime (--profile)");
    call.site->nanoseconds += static_cast<int64_t>(milliseconds * 1e6);
    ++call.site->calls;
    c.spareEvents.push_back(call.start);
    c.spareEvents.push_back(call.stop);
  }
  return true;
}

const char *opName(int32_t op) {
  // By enumerator, not by position: the names cannot shift against
  // CheckedOp when an op joins it.
  switch (static_cast<CheckedOp>(op)) {
  case CheckedOp::Embedding:
    return "moe.embedding";
  case CheckedOp::CrossEntropy:
    return "moe.cross_entropy";
  case CheckedOp::Gate:
    return "moe.gate";
  case CheckedOp::Dispatch:
    return "moe.dispatch";
  case CheckedOp::Route:
    return "moe.route";
  case CheckedOp::Place:
    return "moe.place";
  case CheckedOp::Combine:
    return "moe.combine";
  case CheckedOp::AuxLoss:
    return "moe.aux_loss";
  case CheckedOp::PooledAuxLoss:
    return "moe.pooled_aux_loss";
  case CheckedOp::RoutingMetrics:
    return "moe.routing_metrics";
  case CheckedOp::ExpertFfn:
    return "moe.expert_ffn";
  case CheckedOp::MergeRuns:
    return "moe.merge_runs";
  case CheckedOp::SplitRuns:
    return "moe.split_runs";
  case CheckedOp::ExpertLoad:
    return "moe.expert_load";
  }
  return "a kernel";
}

[[noreturn]] void raise(const DeviceError &error) {
  const char *op = opName(error.op);
  const int64_t *v = error.values;
  switch (static_cast<DeviceCheck>(error.check)) {
  case DeviceCheck::TokenId:
    moert::fail("{}: token id {} is outside [0, {})", op, v[0], v[1]);
  case DeviceCheck::Target:
    moert::fail("{}: target {} is outside [0, {})", op, v[0], v[1]);
  case DeviceCheck::ExpertIndex:
    moert::fail("{}: expert index {} is outside [0, {})", op, v[0], v[1]);
  case DeviceCheck::Slot:
    moert::fail("{}: slot {} is outside [0, {})", op, v[0], v[1]);
  case DeviceCheck::ExpertCount:
    moert::fail("{}: count {} of expert {} is outside [0, {}]", op, v[0], v[1],
                v[2]);
  case DeviceCheck::RunFit:
    moert::fail("{}: rank {}'s run of {} rows for expert {} does not fit runs "
                "of {} rows or a queue of {} rows",
                op, v[0], v[1], v[2], v[3], v[4]);
  case DeviceCheck::None:
    break;
  }
  moert::fail("{}: unknown device error {}", op, error.check);
}

template <typename T> T *upload(const T *host, int64_t count) {
  void *device = nullptr;
  size_t bytes = std::max<int64_t>(count, 1) * sizeof(T);
  check(cudaMalloc(&device, bytes), "cudaMalloc (a constant)");
  // On the step's stream, ahead of the kernels that read it: a pageable
  // cudaMemcpy returns before its DMA ends, and the non-blocking stream does
  // not wait for the legacy stream. A pageable source is staged before
  // cudaMemcpyAsync returns, so `host` may go away at once. (Only the
  // eager first call uploads, never a graph capture.)
  check(cudaMemcpyAsync(device, host, count * sizeof(T), cudaMemcpyHostToDevice,
                        context().stream),
        "cudaMemcpyAsync (a constant)");
  return static_cast<T *>(device);
}

//===----------------------------------------------------------------------===//
// moe_target
//===----------------------------------------------------------------------===//

int32_t setThreads(int32_t) { return 1; } // the host thread only launches

void *allocate(int64_t bytes, int64_t alignment) {
  int devices = 0;
  cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0)
    moert::fail("this binary runs on an NVIDIA GPU, and none is usable here "
                "({})",
                status != cudaSuccess ? cudaGetErrorString(status)
                                      : "no device");
  // cudaMalloc aligns to 256 bytes, the target's alignment.
  if (alignment > 256)
    throw moert::AllocationError(fmt::format(
        "cudaMalloc aligns to 256 bytes, and the model's #moe.target asks "
        "for {} (moe-attach-target alignment=256)",
        alignment));
  void *memory = nullptr;
  status = cudaMalloc(&memory, std::max<int64_t>(bytes, 1));
  if (status != cudaSuccess) {
    dismiss(status);
    size_t free = 0, total = 0;
    std::string room;
    if (cudaMemGetInfo(&free, &total) == cudaSuccess)
      room = fmt::format(" (the GPU has {:.1f} of its {:.1f} GB free)",
                         free / 1e9, total / 1e9);
    throw moert::AllocationError(
        fmt::format("cudaMalloc: {}{}", cudaGetErrorString(status), room));
  }
  // Zeroed on the step's stream and waited for: a cudaMemset (legacy
  // stream) could still run after a copy_to_target on the non-blocking
  // stream and wipe it.
  cudaStream_t s = context().stream;
  status = cudaMemsetAsync(memory, 0, std::max<int64_t>(bytes, 1), s);
  if (status == cudaSuccess)
    status = cudaStreamSynchronize(s);
  if (status != cudaSuccess) {
    dismiss(status);
    dismiss(cudaFree(memory));
    throw moert::AllocationError(
        fmt::format("zeroing it: {}", cudaGetErrorString(status)));
  }
  return memory;
}

void release(void *memory) { dismiss(cudaFree(memory)); }

void copyToTarget(void *destination, const void *source, int64_t bytes) {
  check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyHostToDevice,
                        context().stream),
        "cudaMemcpyAsync (to the device)");
  check(cudaStreamSynchronize(context().stream), "cudaStreamSynchronize");
}

// A kernel's bad index is raised by synchronize(), which hosts call after
// a function and before reading its outputs (one check per call, not one
// per output).
void copyToHost(void *destination, const void *source, int64_t bytes) {
  check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToHost,
                        context().stream),
        "cudaMemcpyAsync (to the host)");
  check(cudaStreamSynchronize(context().stream), "cudaStreamSynchronize");
}

void synchronize() { checkDeviceErrors(); }

} // namespace

//===----------------------------------------------------------------------===//
// Support.h
//===----------------------------------------------------------------------===//

cudaStream_t moert::cuda::stream() { return context().stream; }
cublasHandle_t moert::cuda::blas() { return context().blas; }
cublasHandle_t moert::cuda::mixedBlas() { return context().mixedBlas; }
DeviceError *moert::cuda::deviceErrors() { return context().errors; }

void moert::cuda::check(cudaError_t status, const char *what) {
  if (status != cudaSuccess)
    moert::fail("CUDA: {} failed: {}", what, cudaGetErrorString(status));
}

void moert::cuda::checkLaunch(const char *kernel) {
  check(cudaGetLastError(), kernel);
}

void moert::cuda::check(cublasStatus_t status, const char *what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    moert::fail("cuBLAS: {} failed: {}", what, cublasGetStatusString(status));
}

void *moert::cuda::workspace(size_t bytes) {
  Context &c = context();
  if (bytes <= c.workspaceBytes)
    return c.workspace;
  if (capturing())
    moert::fail("CUDA: a kernel needs {} bytes of workspace while a graph is "
                "captured (the eager first call sized it at {})",
                bytes, c.workspaceBytes);
  // Kernels still in flight may use the old buffer.
  check(cudaStreamSynchronize(c.stream), "cudaStreamSynchronize");
  check(cudaFree(c.workspace), "cudaFree");
  c.workspace = nullptr;
  check(cudaMalloc(&c.workspace, bytes), "cudaMalloc (workspace)");
  c.workspaceBytes = bytes;
  ++c.workspaceGeneration;
  return c.workspace;
}

//===----------------------------------------------------------------------===//
// CudaTarget.h
//===----------------------------------------------------------------------===//

float *moert::cuda::uploadConstant(const float *host, int64_t count) {
  return upload(host, count);
}
int32_t *moert::cuda::uploadConstant(const int32_t *host, int64_t count) {
  return upload(host, count);
}
int64_t *moert::cuda::uploadConstant(const int64_t *host, int64_t count) {
  return upload(host, count);
}
moert::bf16 *moert::cuda::uploadConstant(const moert::bf16 *host,
                                         int64_t count) {
  return upload(host, count);
}

int64_t *moert::cuda::deviceRowCounts(int64_t count, int64_t fill) {
  std::vector<int64_t> host(count, std::max<int64_t>(fill, 0));
  return upload(host.data(), count);
}

void moert::cuda::copy(void *destination, const void *source, int64_t bytes) {
  check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice,
                        context().stream),
        "cudaMemcpyAsync");
}

void moert::cuda::zero(void *destination, int64_t bytes) {
  check(cudaMemsetAsync(destination, 0, bytes, context().stream),
        "cudaMemsetAsync");
}

void moert::cuda::checkDeviceErrors() {
  Context &c = context();
  check(cudaStreamSynchronize(c.stream), "a kernel");
  DeviceError error;
  check(cudaMemcpy(&error, c.errors, sizeof error, cudaMemcpyDeviceToHost),
        "cudaMemcpy (the device error word)");
  if (error.check == 0)
    return;
  // On the stream, before any later kernel can report (see Context).
  check(cudaMemsetAsync(c.errors, 0, sizeof error, c.stream),
        "cudaMemsetAsync");
  raise(error);
}

moert::cuda::ProfileScope::ProfileScope(moe_profile_site &site) : site(site) {
  if (capturing())
    moert::fail("CUDA: a profiled kernel call is being captured in a graph");
  start = takeEvent();
  stop = takeEvent();
  cudaError_t status = cudaEventRecord(start, context().stream);
  if (status != cudaSuccess) {
    context().spareEvents.insert(context().spareEvents.end(), {start, stop});
    check(status, "cudaEventRecord (--profile)");
  }
}

moert::cuda::ProfileScope::~ProfileScope() {
  // A destructor must not throw: a stop event that fails to record fails
  // cudaEventSynchronize or cudaEventElapsedTime in settleProfile.
  dismiss(cudaEventRecord(stop, context().stream));
  context().timedCalls.push_back({&site, start, stop});
}

namespace {
/// The FunctionGraphs alive. Created by the first one's constructor, so
/// destroyed after the last one's destructor.
std::vector<FunctionGraph *> &liveGraphs() {
  static std::vector<FunctionGraph *> graphs;
  return graphs;
}
} // namespace

FunctionGraph::FunctionGraph() { liveGraphs().push_back(this); }

FunctionGraph::~FunctionGraph() {
  std::vector<FunctionGraph *> &graphs = liveGraphs();
  graphs.erase(std::find(graphs.begin(), graphs.end(), this));
  release();
}

void FunctionGraph::release() {
  if (graph)
    dismiss(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph)));
  graph = nullptr;
}

void moert::cuda::releaseGraphs() {
  for (FunctionGraph *graph : liveGraphs())
    graph->release();
}

void FunctionGraph::run(std::initializer_list<const void *> key,
                        const std::function<void()> &body) {
  static const bool enabled = [] {
    const char *setting = std::getenv("MOE_CUDA_GRAPHS");
    return !setting || std::strcmp(setting, "0") != 0;
  }();
  if (!enabled || !warmedUp || profiled) {
    body();
    warmedUp = true;
    profiled = settleProfile() || profiled;
    return;
  }
  cudaStream_t s = context().stream;
  // Another function's first call may have grown the workspace since this
  // graph was captured: capture again.
  uint64_t generation = context().workspaceGeneration;
  if (!graph || generation != capturedGeneration ||
      !std::equal(key.begin(), key.end(), capturedKey.begin(),
                  capturedKey.end())) {
    release();
    cudaGraph_t captured = nullptr;
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture");
    try {
      body();
    } catch (...) {
      dismiss(cudaStreamEndCapture(s, &captured));
      if (captured)
        dismiss(cudaGraphDestroy(captured));
      throw;
    }
    check(cudaStreamEndCapture(s, &captured), "cudaStreamEndCapture");
    cudaGraphExec_t executable = nullptr;
    check(cudaGraphInstantiate(&executable, captured, 0),
          "cudaGraphInstantiate");
    check(cudaGraphDestroy(captured), "cudaGraphDestroy");
    graph = executable;
    capturedKey.assign(key.begin(), key.end());
    capturedGeneration = context().workspaceGeneration;
  }
  check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), s),
        "cudaGraphLaunch");
}

extern "C" const moe_target moe_cuda_target = {
    "cuda",       setThreads, allocate,          release,
    copyToTarget, copyToHost, synchronize,       joinGroup,
    gatherBytes,  leaveGroup, collectiveSeconds, /*host_memory=*/0};
