//===- Files.cpp - reading input files ------------------------------------===//

#include "moert/Files.h"
#include "moert/Error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

std::vector<char> moert::readRegularFile(const std::string &path,
                                         const char *what) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail("{}: cannot open {}: {}", path, what, describeErrno());
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    bool directory = S_ISDIR(info.st_mode);
    close(fd);
    fail("{}: {} is {}", path, what,
         directory ? "a directory" : "not a regular file");
  }
  std::vector<char> bytes;
  try {
    bytes.resize(static_cast<size_t>(info.st_size));
  } catch (const std::bad_alloc &) {
    close(fd);
    fail("{}: {} of {} bytes does not fit in memory", path, what, info.st_size);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got = read(fd, bytes.data() + done, bytes.size() - done);
    if (got <= 0) {
      std::string reason = got < 0 ? describeErrno() : "the file shrank";
      close(fd);
      fail("{}: cannot read {}: {}", path, what, reason);
    }
    done += static_cast<size_t>(got);
  }
  close(fd);
  return bytes;
}
