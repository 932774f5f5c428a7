//===- StandardStreams.cpp - stdin, stdout and stderr kept honest ---------===//

#include "moert/StandardStreams.h"
#include "moert/Error.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>

void moert::reportFailedWrites() {
  std::signal(SIGXFSZ, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
}

void moert::reserveStandardStreams() {
  for (int stream : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (fcntl(stream, F_GETFD) != -1 || errno != EBADF)
      continue;
    // The lower streams are open: the lowest free number is this one.
    int fd = open("/dev/null", stream == STDIN_FILENO ? O_WRONLY : O_RDONLY);
    if (fd >= 0 && fd != stream) {
      dup2(fd, stream);
      close(fd);
    }
  }
}

void moert::requireStdoutWritten() {
  if (std::fflush(stdout) != 0) {
    std::string cause = describeErrno();
    std::clearerr(stdout);
    fail("stdout: write failed: {}", cause);
  }
  if (std::ferror(stdout)) {
    std::clearerr(stdout);
    fail("stdout: write failed");
  }
}
