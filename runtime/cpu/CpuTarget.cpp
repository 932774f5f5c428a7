//===- CpuTarget.cpp - the model ABI's CPU target -------------------------===//

#include "moert/CpuTarget.h"
#include "moert/Collectives.h"
#include "moert/Error.h"
#include "moert/ModelState.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

namespace {

/// Starts `threads` - 1 threads at once and joins them: libgomp ends the
/// process with its own message when it cannot start a team's thread (a
/// process or memory limit, each thread reserving the stack size limit),
/// so the count is tried here first, where the error can say what to do.
/// Threads of a stack size set for libgomp (OMP_STACKSIZE, GOMP_STACKSIZE)
/// are not tried: those variables' own syntax decides their size.
void requireThreadsStart(int32_t threads) {
  if (std::getenv("OMP_STACKSIZE") || std::getenv("GOMP_STACKSIZE"))
    return;
  std::vector<std::thread> started;
  try {
    while (static_cast<int32_t>(started.size()) + 1 < threads)
      started.emplace_back([] {});
  } catch (const std::system_error &error) {
    int32_t failed = static_cast<int32_t>(started.size()) + 2;
    for (std::thread &thread : started)
      thread.join();
    moert::fail("cannot start {} threads: thread {} did not start ({}); run "
                "fewer (--threads), or lower the stack size limit (ulimit "
                "-s) that each thread reserves",
                threads, failed, error.code().message());
  }
  for (std::thread &thread : started)
    thread.join();
}

int32_t setThreads(int32_t threads) {
  // OpenMP threads serve both the kernels' loops and oneDNN's GEMMs.
  if (threads > 0)
    omp_set_num_threads(threads);
  else if (omp_get_max_threads() > MOE_MAX_THREADS)
    moert::fail("OMP_NUM_THREADS asks for {} threads, more than the {} a "
                "model runs on (as --threads)",
                omp_get_max_threads(), MOE_MAX_THREADS);
  requireThreadsStart(omp_get_max_threads());
  return omp_get_max_threads();
}

void *allocate(int64_t bytes, int64_t alignment) {
  return moert::allocateZeroed(bytes, alignment);
}

void copy(void *destination, const void *source, int64_t bytes) {
  // Gigabytes of state at start-up: every thread copies (and faults in) a
  // part; the few kilobytes of a step's inputs are copied on this thread.
  constexpr int64_t kPiece = int64_t(4) << 20;
  int64_t pieces = (bytes + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static) if (pieces > 1)
  for (int64_t piece = 0; piece < pieces; ++piece) {
    int64_t begin = piece * kPiece;
    std::memcpy(static_cast<char *>(destination) + begin,
                static_cast<const char *>(source) + begin,
                std::min(kPiece, bytes - begin));
  }
}

void synchronize() {}

void gather(int32_t gridAxes, const void *local, int64_t bytes, void *whole) {
  moert::cpu::allGatherBytes(moert::GridAxes{gridAxes}, local, bytes, whole);
}

} // namespace

extern "C" const moe_target moe_cpu_target = {"cpu",
                                              setThreads,
                                              allocate,
                                              moert::releaseZeroed,
                                              copy,
                                              copy,
                                              synchronize,
                                              moert::cpu::joinGroup,
                                              gather,
                                              moert::cpu::leaveGroup,
                                              moert::cpu::collectiveSeconds,
                                              /*host_memory=*/1};
