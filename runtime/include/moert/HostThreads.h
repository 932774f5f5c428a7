//===- HostThreads.h - work spread over the host's threads -----*- C++ -*-===//
//
// Start-up and file work that is not a kernel (initializing parameters,
// checksumming a checkpoint) runs on every core with plain threads: it
// happens before the target's threads exist, and libmoert has no OpenMP.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_HOSTTHREADS_H
#define MOERT_HOSTTHREADS_H

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <system_error>
#include <thread>
#include <vector>

namespace moert {

/// Calls work(i) for every i in [0, count), each once, on up to one thread
/// per core (the calling thread among them), in no set order; returns when
/// all are done. work must not throw. Where no thread can start (a process or
/// memory limit), the threads that did, or the calling thread alone, take every
/// item.
template <typename Work> void forEachOnHostThreads(size_t count, Work work) {
  std::atomic<size_t> next{0};
  auto take = [&] {
    for (size_t i = next++; i < count; i = next++)
      work(i);
  };
  size_t threads = std::min<size_t>(
      std::max(1u, std::thread::hardware_concurrency()), count);
  std::vector<std::thread> workers;
  // Reserved first: a failed push after a started thread would end the
  // process (a joinable thread destroyed).
  workers.reserve(threads);
  try {
    for (size_t t = 1; t < threads; ++t)
      workers.emplace_back(take);
  } catch (const std::system_error &) {
  }
  take();
  for (std::thread &worker : workers)
    worker.join();
}

} // namespace moert

#endif // MOERT_HOSTTHREADS_H
