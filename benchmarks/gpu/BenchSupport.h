//===- BenchSupport.h - what the GPU benchmarks share -----------*- C++ -*-===//
//
// Timing by CUDA events on the kernels' stream, device arrays made from
// host values, and a main that takes no arguments, for
// moe-grouped-gemm-bench and moe-attention-bench.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_BENCHMARKS_GPU_BENCHSUPPORT_H
#define MOE_BENCHMARKS_GPU_BENCHSUPPORT_H

#include "Support.h"

#include "moert/Error.h"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace moe::gpubench {

using moert::cuda::check;
using moert::cuda::stream;

/// Seconds per call of `enqueue`, from CUDA events around `repeats` calls
/// after `warmup` ones.
inline double timeIt(const std::function<void()> &enqueue, int warmup = 3,
                     int repeats = 20) {
  for (int i = 0; i < warmup; ++i)
    enqueue();
  cudaEvent_t begin, end;
  check(cudaEventCreate(&begin), "cudaEventCreate");
  check(cudaEventCreate(&end), "cudaEventCreate");
  check(cudaEventRecord(begin, stream()), "cudaEventRecord");
  for (int i = 0; i < repeats; ++i)
    enqueue();
  check(cudaEventRecord(end, stream()), "cudaEventRecord");
  check(cudaEventSynchronize(end), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  return ms / 1000.0 / repeats;
}

/// A device copy of `host`, uploaded on the kernels' stream (which does not
/// wait for the legacy one).
template <typename T> T *deviceCopy(const std::vector<T> &host) {
  T *device = nullptr;
  check(cudaMalloc(&device, host.size() * sizeof(T)), "cudaMalloc");
  check(cudaMemcpyAsync(device, host.data(), host.size() * sizeof(T),
                        cudaMemcpyHostToDevice, stream()),
        "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
  return device;
}

/// A device array of `count` copies of `fill`.
template <typename T> T *deviceArray(int64_t count, T fill) {
  return deviceCopy(std::vector<T>(count, fill));
}

/// The main of a benchmark `tool` that takes no arguments: --help prints
/// its usage and `what` it does, any argument is an error, and errors exit
/// non-zero with their message; else run()'s exit status.
inline int benchmarkMain(int argc, char **argv, const char *tool,
                         const char *what, const std::function<int()> &run) {
  return moert::exitOnErrors(tool, [&] {
    if (argc == 2 &&
        (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
      std::printf("usage: %s\n%s; takes no arguments.\n", tool, what);
      return 0;
    }
    if (argc > 1)
      moert::fail("unexpected argument '{}': {} takes none (see --help)",
                  argv[1], tool);
    return run();
  });
}

} // namespace moe::gpubench

#endif // MOE_BENCHMARKS_GPU_BENCHSUPPORT_H
