//===- ErrorTest.cpp - the runtime's error messages and top-level path ----===//

#include "moert/Error.h"

#include <gtest/gtest.h>

#include <new>

namespace {

TEST(ErrorTest, FailFormatsItsArguments) {
  try {
    moert::fail("{}: tensor '{}' holds {} at element {}", "ckpt", "w", 1.5, 7);
    FAIL() << "fail returned";
  } catch (const moert::Error &error) {
    EXPECT_STREQ(error.what(), "ckpt: tensor 'w' holds 1.5 at element 7");
  }
}

/// What exitOnErrors returns and prints for `body`.
std::pair<int, std::string> runReporting(const std::function<int()> &body) {
  testing::internal::CaptureStderr();
  int code = moert::exitOnErrors("tool", body);
  return {code, testing::internal::GetCapturedStderr()};
}

TEST(ErrorTest, ExitOnErrorsPassesTheBodysExitCode) {
  EXPECT_EQ(runReporting([] { return 0; }), std::make_pair(0, std::string()));
  EXPECT_EQ(runReporting([] { return 3; }), std::make_pair(3, std::string()));
}

TEST(ErrorTest, ExitOnErrorsTurnsEveryExceptionIntoOneLine) {
  EXPECT_EQ(runReporting([]() -> int { moert::fail("{}: bad", "f"); }),
            std::make_pair(1, std::string("tool: error: f: bad\n")));
  EXPECT_EQ(runReporting([]() -> int { throw std::bad_alloc(); }),
            std::make_pair(1, std::string("tool: error: out of memory: an "
                                          "allocation failed (is a memory "
                                          "limit, such as ulimit -v, too "
                                          "low?)\n")));
  EXPECT_EQ(runReporting([]() -> int { throw std::out_of_range("index 9"); }),
            std::make_pair(1, std::string("tool: error: index 9\n")));
  EXPECT_EQ(runReporting([]() -> int { throw 42; }),
            std::make_pair(1, std::string("tool: error: unknown exception\n")));
}

} // namespace
