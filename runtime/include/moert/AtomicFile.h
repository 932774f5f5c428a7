//===- AtomicFile.h - all-or-nothing file replacement -----------*- C++ -*-===//
//
// Checkpoints and outputs are written to a temporary file beside the target,
// fsynced and renamed over it, so a crash or a full disk never leaves a
// half-written file where a good one was.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ATOMICFILE_H
#define MOERT_ATOMICFILE_H

#include <cstddef>
#include <string>

namespace moert {

class AtomicFile {
public:
  /// Creates the temporary file; throws moert::Error.
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile &) = delete;
  AtomicFile &operator=(const AtomicFile &) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  void write(const char *data, size_t size);
  /// Flushes to disk and renames the temporary file over the target.
  void commit();

private:
  std::string path;
  std::string temporaryPath;
  int fd = -1;
};

} // namespace moert

#endif // MOERT_ATOMICFILE_H
