//===- CpuTarget.cpp - the model ABI's CPU target -------------------------===//

#include "moert/CpuTarget.h"
#include "moert/Collectives.h"
#include "moert/ModelState.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace {

int32_t setThreads(int32_t threads) {
  // OpenMP threads serve both the kernels' loops and oneDNN's GEMMs.
  if (threads > 0)
    omp_set_num_threads(threads);
  return omp_get_max_threads();
}

void *allocate(int64_t bytes, int64_t alignment) {
  return moert::allocateZeroed(bytes, alignment);
}

void copy(void *destination, const void *source, int64_t bytes) {
  std::memcpy(destination, source, bytes);
}

void synchronize() {}

} // namespace

extern "C" const moe_target moe_cpu_target = {"cpu",
                                              setThreads,
                                              allocate,
                                              std::free,
                                              copy,
                                              copy,
                                              synchronize,
                                              moert::cpu::joinGroup,
                                              moert::cpu::allGatherBytes,
                                              moert::cpu::leaveGroup,
                                              moert::cpu::collectiveSeconds};
