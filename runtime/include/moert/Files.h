//===- Files.h - reading input files ----------------------------*- C++ -*-===//
//
// Inputs are regular files read by their size: a directory, a device
// (/dev/zero) or a FIFO is refused by name instead of being read until
// memory runs out.
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

} // namespace moert

#endif // MOERT_FILES_H
