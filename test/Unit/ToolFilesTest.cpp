//===- ToolFilesTest.cpp - the tools' input and output files --------------===//
//
// What the lit tests cannot reach through a tool: a write that fails, or
// throws, after the output was opened.
//
//===----------------------------------------------------------------------===//

#include "moe/Support/ToolFiles.h"
#include "moert/Error.h"

#include "ErrorTestUtils.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace moe::test;

namespace {

class ToolFilesTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir();
    if (pattern.empty() || pattern.back() != '/')
      pattern += '/';
    pattern += "moe-tool-files-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    ASSERT_NE(mkdtemp(buffer.data()), nullptr);
    dir = buffer.data();
    path = dir + "/out.txt";
    std::ofstream(path) << "KEEP";
  }

  void TearDown() override {
    for (const std::string &name : names())
      unlink((dir + "/" + name).c_str());
    rmdir(dir.c_str());
  }

  std::vector<std::string> names() const {
    std::vector<std::string> found;
    if (DIR *handle = opendir(dir.c_str())) {
      while (dirent *entry = readdir(handle))
        if (std::string(entry->d_name) != "." &&
            std::string(entry->d_name) != "..")
          found.push_back(entry->d_name);
      closedir(handle);
    }
    return found;
  }

  std::string contents() const {
    std::stringstream text;
    text << std::ifstream(path).rdbuf();
    return text.str();
  }

  std::string dir, path;
};

TEST_F(ToolFilesTest, AFailedWriteLeavesTheFileAndNoTemporary) {
  bool written = mlir::moe::writeToolOutput(path, [](llvm::raw_ostream &os) {
    os << std::string(100000, 'x');
    return false;
  });
  EXPECT_FALSE(written);
  EXPECT_EQ(contents(), "KEEP");
  EXPECT_EQ(names(), std::vector<std::string>{"out.txt"});
}

TEST_F(ToolFilesTest, AThrowingWriteLeavesTheFileAndNoTemporary) {
  std::string message = errorOf([&] {
    mlir::moe::writeToolOutput(path, [](llvm::raw_ostream &os) -> bool {
      os << "partial";
      moert::fail("the translation failed");
    });
  });
  EXPECT_EQ(message, "the translation failed");
  EXPECT_EQ(contents(), "KEEP");
  EXPECT_EQ(names(), std::vector<std::string>{"out.txt"});
}

TEST_F(ToolFilesTest, ASuccessfulWriteReplacesTheFile) {
  EXPECT_TRUE(mlir::moe::writeToolOutput(path, [](llvm::raw_ostream &os) {
    os << "NEW";
    return true;
  }));
  EXPECT_EQ(contents(), "NEW");
  EXPECT_EQ(names(), std::vector<std::string>{"out.txt"});
}

TEST_F(ToolFilesTest, AWriteErrorNamesThePath) {
  std::string message = errorOf([&] {
    mlir::moe::writeToolOutput("/dev/full", [](llvm::raw_ostream &os) {
      os << std::string(100000, 'x');
      return true;
    });
  });
  EXPECT_TRUE(contains(message, "/dev/full: write failed")) << message;
}

TEST_F(ToolFilesTest, InputsAreRegularFiles) {
  EXPECT_EQ(mlir::moe::readToolInput(path)->getBuffer(), "KEEP");
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  std::string message = errorOf([&] { mlir::moe::readToolInput(fifo); });
  EXPECT_TRUE(contains(message, fifo + ": input is not a regular file"))
      << message;
}

} // namespace
