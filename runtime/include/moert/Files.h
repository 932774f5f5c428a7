//===- Files.h - reading input files, appending to logs ---------*- C++ -*-===//
//
// Inputs are regular files read by their size: a directory, a device
// (/dev/zero) or a FIFO is refused by name instead of being read until
// memory runs out; outputs never name inputs.
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

/// The folder of `path`: what comes before its last '/', "/" for a file at
/// the root, "." for a bare name.
std::string parentDirectory(const std::string &path);

/// A file given on a command line, and the option that gave it.
struct FileOption {
  const char *option;
  std::string path;
};

/// Throws moert::Error when an output names the same file as an input or
/// another output: the same regular file under any name, or, for a file
/// not created yet, the same name in the same folder. Empty paths (options
/// not given) and devices or FIFOs (/dev/stdout) are not compared. The
/// outputs would otherwise append to the data or overwrite a model file,
/// or two of them would write one file and the last write would fail.
void requireDistinctFiles(const std::vector<FileOption> &outputs,
                          const std::vector<FileOption> &inputs);

} // namespace moert

#endif // MOERT_FILES_H
