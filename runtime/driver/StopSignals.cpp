//===- StopSignals.cpp - SIGINT and SIGTERM stop a run between steps ------===//

#include "StopSignals.h"

#include "moert/Error.h"
#include "moert/GlobalPlacement.h"
#include "moert/ModelAbi.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <vector>

namespace {

constexpr size_t kStackBytes = 256 * 1024, kMaxStackBytes = 64 << 20;

std::atomic<int> requested{0};
std::atomic<bool> stoppable{false};

sigset_t stopSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

/// Ends the process by `signal`'s default action, as if no one took it.
[[noreturn]] void endBy(int signal) {
  std::signal(signal, SIG_DFL);
  sigset_t just;
  sigemptyset(&just);
  sigaddset(&just, signal);
  pthread_sigmask(SIG_UNBLOCK, &just, nullptr);
  pthread_kill(pthread_self(), signal);
  std::_Exit(128 + signal); // not reached: the default action ends it
}

void *takeSignals(void *) {
  sigset_t set = stopSet();
  for (;;) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0)
      continue;
    int none = 0;
    if (!stoppable.load() || !requested.compare_exchange_strong(none, signal))
      endBy(signal);
  }
}

} // namespace

void moert::takeStopSignals() {
  sigset_t set = stopSet();
  if (int error = pthread_sigmask(SIG_BLOCK, &set, nullptr))
    fail("cannot block SIGINT and SIGTERM: {}", std::strerror(error));
  // A small stack of its own: by default a thread reserves the stack limit
  // (ulimit -s), which may exceed the address space the run has. The stack
  // also holds the thread's static TLS (CUDA's libraries have much), and a
  // size too small for it is EINVAL: then a larger one.
  int error = EINVAL;
  for (size_t bytes = kStackBytes; error == EINVAL && bytes <= kMaxStackBytes;
       bytes *= 4) {
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, bytes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    error = pthread_create(&thread, &attributes, takeSignals, nullptr);
    pthread_attr_destroy(&attributes);
  }
  if (error)
    fail("cannot start the thread that takes SIGINT and SIGTERM: {}",
         std::strerror(error));
}

void moert::allowStopBetweenSteps() { stoppable.store(true); }

int moert::stopRequested() { return requested.load(); }

int moert::stopRequestedOnAnyRank(const moe_model &model,
                                  const RankGroup &group) {
  int32_t mine = stopRequested();
  if (group.ranks == 1)
    return mine;
  std::vector<int32_t> all(group.ranks);
  model.target->gather(group.allAxes(), &mine, sizeof mine, all.data());
  return *std::max_element(all.begin(), all.end());
}

void moert::waitForEveryRank(const moe_model &model, const RankGroup &group) {
  stopRequestedOnAnyRank(model, group); // a gather: a barrier
}
