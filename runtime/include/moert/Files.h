//===- Files.h - reading input files, appending to logs ---------*- C++ -*-===//
//
// Inputs are regular files read by their size: a directory, a device
// (/dev/zero) or a FIFO is refused by name instead of being read until
// memory runs out. Logs are appended to only if they are logs.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_FILES_H
#define MOERT_FILES_H

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

/// The bytes of the regular file `path`, or its first `limit` bytes when it
/// is longer; `what` names it in errors ("data file", "checkpoint"). Throws
/// moert::Error.
std::vector<char> readRegularFile(const std::string &path, const char *what,
                                  uint64_t limit = UINT64_MAX);

/// Throws moert::Error when `path` is a non-empty regular file whose first
/// line is not a JSON object: --metrics appends JSON lines to a metrics file
/// of an earlier run, never to the training data or a checkpoint.
void requireAppendableMetrics(const std::string &path);

} // namespace moert

#endif // MOERT_FILES_H
