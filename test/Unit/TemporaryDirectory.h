//===- TemporaryDirectory.h - a test's own directory ------------*- C++ -*-===//

#ifndef MOE_TEST_UNIT_TEMPORARYDIRECTORY_H
#define MOE_TEST_UNIT_TEMPORARYDIRECTORY_H

#include <gtest/gtest.h>

#include <algorithm>
#include <dirent.h>
#include <stdexcept>
#include <stdlib.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace moe::test {

/// An empty directory of its own under gtest's TempDir, removed with the
/// files and empty directories in it when the object goes.
class TemporaryDirectory {
public:
  explicit TemporaryDirectory(const std::string &prefix) {
    std::string pattern = ::testing::TempDir();
    if (pattern.empty() || pattern.back() != '/')
      pattern += '/';
    pattern += prefix + "-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!mkdtemp(buffer.data()))
      throw std::runtime_error("cannot create a directory " + pattern);
    directory = buffer.data();
  }
  TemporaryDirectory(const TemporaryDirectory &) = delete;
  TemporaryDirectory &operator=(const TemporaryDirectory &) = delete;
  ~TemporaryDirectory() {
    for (const std::string &name : names())
      if (unlink(pathOf(name).c_str()) != 0)
        rmdir(pathOf(name).c_str());
    rmdir(directory.c_str());
  }

  const std::string &path() const { return directory; }
  std::string pathOf(const std::string &name) const {
    return directory + "/" + name;
  }
  /// What the directory holds, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> found;
    if (DIR *handle = opendir(directory.c_str())) {
      while (dirent *entry = readdir(handle)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..")
          found.push_back(name);
      }
      closedir(handle);
    }
    std::sort(found.begin(), found.end());
    return found;
  }

private:
  std::string directory;
};

} // namespace moe::test

#endif // MOE_TEST_UNIT_TEMPORARYDIRECTORY_H
