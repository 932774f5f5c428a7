//===- MetricsLog.cpp - the JSON-lines file of --metrics ------------------===//

#include "moert/MetricsLog.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/Json.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace {

/// Throws unless `path` may take metrics lines (as MetricsLog says).
void requireAppendableMetrics(const std::string &path) {
  using namespace moert;
  // New and empty files, and devices or pipes (/dev/stdout), take any lines.
  struct stat status;
  if (stat(path.c_str(), &status) != 0 || S_ISCHR(status.st_mode) ||
      S_ISFIFO(status.st_mode) || (S_ISREG(status.st_mode) && !status.st_size))
    return;
  // A metrics line is a few KB even with per-layer vectors of many layers.
  constexpr uint64_t kFirstLineLimit = 1 << 20;
  std::vector<char> head =
      readRegularFile(path, "metrics file", kFirstLineLimit);
  auto end = std::find(head.begin(), head.end(), '\n');
  std::string problem;
  nlohmann::json first = parseJsonWithin(
      std::string_view(head.data(), end - head.begin()), path, problem);
  if (!first.is_object() || !first.contains("step"))
    fail("{}: exists and is not a metrics file (JSON lines with a \"step\"): "
         "not appending to it{}",
         path, problem.empty() ? "" : " (" + problem + ")");
  char last = 0;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool lastRead = fd >= 0 && pread(fd, &last, 1, status.st_size - 1) == 1;
  if (fd >= 0)
    close(fd);
  if (!lastRead)
    fail("{}: cannot read the metrics file: {}", path, describeErrno());
  if (last != '\n')
    fail("{}: the metrics file's last line is incomplete (an interrupted "
         "write?): not appending to it",
         path);
}

} // namespace

moert::MetricsLog::MetricsLog(std::string path) : path(std::move(path)) {
  // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking.
  fd = open(this->path.c_str(),
            O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0)
    fail("{}: cannot open the metrics file: {}", this->path,
         errno == ENXIO ? "no process reads this FIFO" : describeErrno());
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  try {
    // Two runs appending to one file interleave their steps, and one's
    // take-back of a failed line could cut the other's. Locked first, the
    // file's last line is not another run's, half written.
    struct stat status;
    if (fstat(fd, &status) == 0 && S_ISREG(status.st_mode) &&
        flock(fd, LOCK_EX | LOCK_NB) != 0)
      fail("{}: {}", this->path,
           errno == EWOULDBLOCK ? "another run is writing metrics to it"
                                : "cannot lock it: " + describeErrno());
    requireAppendableMetrics(this->path);
  } catch (...) {
    close(fd);
    throw;
  }
}

moert::MetricsLog::~MetricsLog() { close(fd); }

void moert::MetricsLog::append(const nlohmann::json &line) {
  std::string text = line.dump() + "\n";
  struct stat before;
  bool regular = fstat(fd, &before) == 0 && S_ISREG(before.st_mode);
  // A short write is followed by one that says why it stopped.
  size_t written = 0;
  ssize_t got = 0;
  while (written < text.size() &&
         (got = write(fd, text.data() + written, text.size() - written)) > 0)
    written += static_cast<size_t>(got);
  if (written == text.size())
    return;
  std::string reason = got < 0 ? describeErrno() : "nothing was written";
  if (regular && written > 0 && ftruncate(fd, before.st_size) != 0)
    fail("{}: cannot write metrics ({}), and cannot take back the partial "
         "line: {}",
         path, reason, describeErrno());
  fail("{}: cannot write metrics: {}", path, reason);
}
