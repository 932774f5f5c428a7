//===- Files.h - reading input files ----------------------------*- C++ -*-===//
//
// Inputs are regular files read by their size: a directory, a device
// (/dev/zero) or a FIFO is refused by name instead of being read until
// memory runs out.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_FILES_H
#define MOERT_FILES_H

#include <string>
#include <vector>

namespace moert {

/// The bytes of the regular file `path`; `what` names it in errors ("data
/// file", "checkpoint"). Throws moert::Error.
std::vector<char> readRegularFile(const std::string &path, const char *what);

} // namespace moert

#endif // MOERT_FILES_H
