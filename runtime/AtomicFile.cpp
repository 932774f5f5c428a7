//===- AtomicFile.cpp - all-or-nothing file replacement -------------------===//

#include "moert/AtomicFile.h"
#include "moert/Error.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace {

std::string parentDirectory(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

moert::AtomicFile::AtomicFile(std::string pathArg) : path(std::move(pathArg)) {
  std::vector<char> pattern(path.begin(), path.end());
  const char suffix[] = ".tmp-XXXXXX";
  pattern.insert(pattern.end(), suffix, suffix + sizeof(suffix));
  fd = mkstemp(pattern.data());
  if (fd < 0)
    fail(path, ": cannot create a temporary file beside it: ", describeErrno());
  temporaryPath = pattern.data();
}

moert::AtomicFile::~AtomicFile() {
  if (fd >= 0)
    close(fd);
  if (!temporaryPath.empty())
    unlink(temporaryPath.c_str());
}

void moert::AtomicFile::write(const char *data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written < 0)
      fail(path, ": write failed: ", describeErrno());
    data += written;
    size -= static_cast<size_t>(written);
  }
}

void moert::AtomicFile::commit() {
  // mkstemp creates the file 0600; give it the mode a plain open() would.
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0)
    fail(path, ": cannot set the file mode: ", describeErrno());
  if (fsync(fd) != 0)
    fail(path, ": fsync failed: ", describeErrno());
  int closed = close(fd);
  fd = -1;
  if (closed != 0)
    fail(path, ": close failed: ", describeErrno());
  if (rename(temporaryPath.c_str(), path.c_str()) != 0)
    fail(path, ": cannot replace the file: ", describeErrno());
  temporaryPath.clear();
  // The rename is durable once the directory entry is on disk.
  int dir = open(parentDirectory(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}
