//===- Files.cpp - reading input files, keeping outputs off them ----------===//

#include "moert/Files.h"
#include "moert/Error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <tuple>

std::vector<char> moert::readRegularFile(const std::string &path,
                                         const char *what, uint64_t limit) {
  // O_NONBLOCK: opening a FIFO would wait for a writer; it does not change
  // how a regular file reads.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    fail("{}: cannot open {}: {}", path, what, describeErrno());
  struct stat info = {};
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    bool directory = S_ISDIR(info.st_mode);
    close(fd);
    fail("{}: {} is {}", path, what,
         directory ? "a directory" : "not a regular file");
  }
  std::vector<char> bytes;
  try {
    bytes.resize(static_cast<size_t>(
        std::min<uint64_t>(static_cast<uint64_t>(info.st_size), limit)));
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

std::string moert::parentDirectory(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

namespace {

/// What tells files apart: an existing regular file's device and inode
/// (with no name), or a new file's folder and name.
struct FileIdentity {
  dev_t device;
  ino_t inode;
  std::string name;
  bool operator==(const FileIdentity &other) const {
    return std::tie(device, inode, name) ==
           std::tie(other.device, other.inode, other.name);
  }
};

std::optional<FileIdentity> identityOf(const std::string &path) {
  if (path.empty())
    return std::nullopt;
  struct stat status;
  if (stat(path.c_str(), &status) == 0) {
    if (!S_ISREG(status.st_mode))
      return std::nullopt;
    return FileIdentity{status.st_dev, status.st_ino, ""};
  }
  size_t slash = path.find_last_of('/');
  std::string folder = slash == std::string::npos ? "."
                       : slash == 0               ? "/"
                                                  : path.substr(0, slash);
  if (stat(folder.c_str(), &status) != 0)
    return std::nullopt; // the output's own check names the missing folder
  return FileIdentity{status.st_dev, status.st_ino,
                      slash == std::string::npos ? path
                                                 : path.substr(slash + 1)};
}

} // namespace

void moert::requireDistinctFiles(const std::vector<FileOption> &outputs,
                                 const std::vector<FileOption> &inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::optional<FileIdentity> output = identityOf(outputs[i].path);
    if (!output)
      continue;
    auto refuse = [&](const FileOption &other) {
      fail("{}: given as both {} and {}: an output must not write to an "
           "input or to another output",
           outputs[i].path, outputs[i].option, other.option);
    };
    for (size_t j = i + 1; j < outputs.size(); ++j)
      if (identityOf(outputs[j].path) == output)
        refuse(outputs[j]);
    for (const FileOption &input : inputs)
      if (identityOf(input.path) == output)
        refuse(input);
  }
}
