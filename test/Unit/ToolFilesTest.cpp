//===- ToolFilesTest.cpp - the tools' input and output files --------------===//
//
// What the lit tests cannot reach through a tool: a write that fails, or
// throws, after the output was opened.
//
//===----------------------------------------------------------------------===//

#include "moe/Support/ToolFiles.h"
#include "moert/Error.h"

#include "ErrorTestUtils.h"
#include "TemporaryDirectory.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace moe::test;

namespace {

class ToolFilesTest : public ::testing::Test {
protected:
  void SetUp() override { std::ofstream(path) << "KEEP"; }

  std::string contents() const {
    std::stringstream text;
    text << std::ifstream(path).rdbuf();
    return text.str();
  }

  TemporaryDirectory directory{"moe-tool-files"};
  std::string path = directory.pathOf("out.txt");
};

TEST_F(ToolFilesTest, AFailedWriteLeavesTheFileAndNoTemporary) {
  bool written = mlir::moe::writeToolOutput(path, [](llvm::raw_ostream &os) {
    os << std::string(100000, 'x');
    return false;
  });
  EXPECT_FALSE(written);
  EXPECT_EQ(contents(), "KEEP");
  EXPECT_EQ(directory.names(), std::vector<std::string>{"out.txt"});
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
  EXPECT_EQ(directory.names(), std::vector<std::string>{"out.txt"});
}

TEST_F(ToolFilesTest, ASuccessfulWriteReplacesTheFile) {
  EXPECT_TRUE(mlir::moe::writeToolOutput(path, [](llvm::raw_ostream &os) {
    os << "NEW";
    return true;
  }));
  EXPECT_EQ(contents(), "NEW");
  EXPECT_EQ(directory.names(), std::vector<std::string>{"out.txt"});
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
  std::string fifo = directory.pathOf("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  std::string message = errorOf([&] { mlir::moe::readToolInput(fifo); });
  EXPECT_TRUE(contains(message, fifo + ": input is not a regular file"))
      << message;
}

} // namespace
