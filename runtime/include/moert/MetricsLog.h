//===- MetricsLog.h - the JSON-lines file of --metrics ----------*- C++ -*-===//
//
// The training binaries and moe-run append one JSON object per line to the
// file --metrics names. They append only to a metrics file of an earlier
// run, never to the data, a config or a torn file, one run at a time (a
// lock on the file), and a line that cannot be written whole is taken back,
// so that every line of the file parses.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_METRICSLOG_H
#define MOERT_METRICSLOG_H

#include <nlohmann/json_fwd.hpp>

#include <string>

namespace moert {

/// `path` opened for appending metrics lines. Throws moert::Error unless it
/// may take them: a new or empty file, a metrics file of an earlier run (its
/// first line a JSON object with a "step", its last line ended), or a
/// device or pipe (/dev/stdout) that a process reads (a FIFO without a
/// reader would block the open). Tools open it before their work.
class MetricsLog {
public:
  explicit MetricsLog(std::string path);
  MetricsLog(const MetricsLog &) = delete;
  MetricsLog &operator=(const MetricsLog &) = delete;
  ~MetricsLog();

  /// Appends `line` and a newline in one write. A failed write (a full
  /// disk) takes back what it wrote to a regular file, then throws.
  void append(const nlohmann::json &line);

private:
  std::string path;
  int fd = -1;
};

} // namespace moert

#endif // MOERT_METRICSLOG_H
