//===- ChildProcessGroup.cpp - a program run in a group of its own --------===//

#include "moe/Support/ChildProcessGroup.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <spawn.h>
#include <sys/wait.h>
#include <vector>

extern char **environ;

using namespace mlir;

namespace {

/// The signals that stop a tool (LLVM's interrupt signals, but SIGUSR2).
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

/// The running group's id (its leader's pid), 0 when none runs.
std::atomic<pid_t> runningGroup{0};
/// The actions in place before, which the stop signals are passed on to.
struct sigaction previousActions[std::size(kStopSignals)];

struct sigaction &previousAction(int signal) {
  for (size_t i = 0; i < std::size(kStopSignals); ++i)
    if (kStopSignals[i] == signal)
      return previousActions[i];
  __builtin_unreachable();
}

/// Waits for `leader` for up to `seconds`; true once it has been reaped (or
/// was already). Async-signal-safe.
bool reapWithin(pid_t leader, int seconds) {
  const timespec tick = {0, 10'000'000};
  for (int tries = seconds * 100; tries > 0; --tries) {
    int status;
    pid_t reaped = waitpid(leader, &status, WNOHANG);
    if (reaped == leader || (reaped < 0 && errno != EINTR))
      return true;
    nanosleep(&tick, nullptr);
  }
  return false;
}

/// Stops the running group, then hands `signal` to the previous action:
/// blocked while this handler runs, it arrives on return. The group gets
/// SIGTERM whatever the signal: a shell's background job ignores SIGINT.
void passToGroup(int signal) {
  int savedErrno = errno;
  if (pid_t group = runningGroup.exchange(0); group > 0) {
    kill(-group, SIGTERM);
    if (!reapWithin(group, 5)) {
      kill(-group, SIGKILL);
      reapWithin(group, 5);
    }
  }
  sigaction(signal, &previousAction(signal), nullptr);
  raise(signal);
  errno = savedErrno;
}

} // namespace

int moe::runInOwnProcessGroup(llvm::ArrayRef<std::string> command,
                              std::string &error) {
  // Between the spawn and the group's id being stored, a stop signal waits.
  sigset_t stopSignals, callerMask;
  sigemptyset(&stopSignals);
  for (int signal : kStopSignals)
    sigaddset(&stopSignals, signal);
  pthread_sigmask(SIG_BLOCK, &stopSignals, &callerMask);
  for (int signal : kStopSignals) {
    struct sigaction current;
    sigaction(signal, nullptr, &current);
    // An ignored signal (nohup's SIGHUP) stays ignored, for the child too.
    if (current.sa_handler == SIG_IGN)
      continue;
    previousAction(signal) = current;
    struct sigaction passOn = {};
    passOn.sa_handler = passToGroup;
    sigemptyset(&passOn.sa_mask);
    sigaction(signal, &passOn, nullptr);
  }

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setsigmask(&attributes, &callerMask);
  std::vector<char *> argv;
  for (const std::string &argument : command)
    argv.push_back(const_cast<char *>(argument.c_str()));
  argv.push_back(nullptr);
  // Outside the terminal's foreground group, the program's messages (or a
  // read) would stop it under `stty tostop`, and this process would wait
  // for ever: it starts with SIGTTOU and SIGTTIN ignored.
  struct sigaction ignore = {}, callerTtou, callerTtin;
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGTTOU, &ignore, &callerTtou);
  sigaction(SIGTTIN, &ignore, &callerTtin);
  pid_t leader = 0;
  int spawnError = posix_spawn(&leader, argv.front(), nullptr, &attributes,
                               argv.data(), environ);
  sigaction(SIGTTOU, &callerTtou, nullptr);
  sigaction(SIGTTIN, &callerTtin, nullptr);
  posix_spawnattr_destroy(&attributes);
  if (spawnError == 0)
    runningGroup = leader;
  pthread_sigmask(SIG_SETMASK, &callerMask, nullptr);

  int result;
  if (spawnError != 0) {
    error = std::strerror(spawnError);
    result = -1;
  } else {
    int status = 0;
    pid_t reaped;
    do
      reaped = waitpid(leader, &status, 0);
    while (reaped < 0 && errno == EINTR);
    result = reaped == leader && WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  }
  runningGroup = 0;
  for (int signal : kStopSignals) {
    struct sigaction current;
    sigaction(signal, nullptr, &current);
    if (current.sa_handler == passToGroup)
      sigaction(signal, &previousAction(signal), nullptr);
  }
  return result;
}
