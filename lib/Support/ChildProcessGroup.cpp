//===- ChildProcessGroup.cpp - a program run in a group of its own --------===//

#include "moe/Support/ChildProcessGroup.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <optional>
#include <spawn.h>
#include <sys/wait.h>
#include <vector>

extern char **environ;

using namespace mlir;

namespace {

/// The signals that stop a tool (LLVM's interrupt signals, but SIGUSR2).
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
/// How long the group gets after SIGTERM, and again after SIGKILL.
constexpr auto kGrace = std::chrono::seconds(5);

/// The running group's id (its leader's pid), 0 when none runs.
std::atomic<pid_t> runningGroup{0};
/// The first stop signal that arrived, 0 before.
std::atomic<int> stopSignal{0};

/// Any thread may take the signal: it only records it and stops the group,
/// and the waiting thread does the rest.
void stopGroup(int signal) {
  int savedErrno = errno;
  int none = 0;
  stopSignal.compare_exchange_strong(none, signal);
  if (pid_t group = runningGroup.load(); group > 0)
    kill(-group, SIGTERM);
  errno = savedErrno;
}

void pause10ms() {
  const timespec tick = {0, 10'000'000};
  nanosleep(&tick, nullptr);
}

/// Waits for the leader of `group` to end, stopping the group with SIGTERM,
/// then SIGKILL after kGrace, once a stop signal has arrived; returns its
/// status as waitpid gives it (-1 when it cannot be had).
int waitForLeader(pid_t group) {
  std::optional<std::chrono::steady_clock::time_point> killAt;
  bool killed = false;
  for (;;) {
    siginfo_t info = {};
    // WNOWAIT: reaped only once no signal can be sent to its group id.
    if (waitid(P_PID, group, &info, WEXITED | WNOHANG | WNOWAIT) != 0 &&
        errno != EINTR)
      break;
    if (info.si_pid == group)
      break;
    if (stopSignal != 0 && !killAt) {
      kill(-group, SIGTERM);
      killAt = std::chrono::steady_clock::now() + kGrace;
    } else if (killAt && !killed &&
               std::chrono::steady_clock::now() >= *killAt) {
      kill(-group, SIGKILL);
      killed = true;
    }
    pause10ms();
  }
  runningGroup = 0;
  int status = 0;
  pid_t reaped;
  do
    reaped = waitpid(group, &status, 0);
  while (reaped < 0 && errno == EINTR);
  return reaped == group ? status : -1;
}

/// After a stop, the group's other processes (a compiler's linker) may
/// outlive its leader: SIGTERM has reached them; they get kGrace to end,
/// then SIGKILL and kGrace more.
void drainGroup(pid_t group) {
  for (int signal : {SIGTERM, SIGKILL}) {
    kill(-group, signal);
    auto deadline = std::chrono::steady_clock::now() + kGrace;
    while (kill(-group, 0) == 0 && std::chrono::steady_clock::now() < deadline)
      pause10ms();
    if (kill(-group, 0) != 0)
      return;
  }
}

} // namespace

int moe::runInOwnProcessGroup(llvm::ArrayRef<std::string> command,
                              std::string &error) {
  struct sigaction previous[std::size(kStopSignals)];
  bool installed[std::size(kStopSignals)] = {};
  struct sigaction recordStop = {};
  recordStop.sa_handler = stopGroup;
  sigemptyset(&recordStop.sa_mask);
  for (int signal : kStopSignals)
    sigaddset(&recordStop.sa_mask, signal);
  for (size_t i = 0; i < std::size(kStopSignals); ++i) {
    sigaction(kStopSignals[i], nullptr, &previous[i]);
    // An ignored signal (nohup's SIGHUP) stays ignored, for the child too.
    installed[i] = previous[i].sa_handler != SIG_IGN;
    if (installed[i])
      sigaction(kStopSignals[i], &recordStop, nullptr);
  }

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
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
  // Stopped already, nothing starts (leader stays 0).
  pid_t leader = 0;
  int spawnError = stopSignal != 0
                       ? 0
                       : posix_spawn(&leader, argv.front(), nullptr,
                                     &attributes, argv.data(), environ);
  sigaction(SIGTTOU, &callerTtou, nullptr);
  sigaction(SIGTTIN, &callerTtin, nullptr);
  posix_spawnattr_destroy(&attributes);

  int result = -2;
  if (spawnError != 0) {
    error = std::strerror(spawnError);
    result = -1;
  } else if (leader > 0) {
    // A stop signal before this line is seen by waitForLeader.
    runningGroup = leader;
    int status = waitForLeader(leader);
    if (stopSignal != 0)
      drainGroup(leader);
    else if (status >= 0 && WIFEXITED(status))
      result = WEXITSTATUS(status);
  }
  for (size_t i = 0; i < std::size(kStopSignals); ++i)
    if (installed[i])
      sigaction(kStopSignals[i], &previous[i], nullptr);
  // The previous action (LLVM's removes the files of RemoveFileOnSignal and
  // ends the process by the signal) takes it, now that no process of the
  // group writes.
  if (int signal = stopSignal.exchange(0))
    raise(signal);
  return result;
}
