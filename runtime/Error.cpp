//===- Error.cpp - runtime errors -----------------------------------------===//

#include "moert/Error.h"

#include <cerrno>
#include <cstring>

std::string moert::describeErrno() { return std::strerror(errno); }

int moert::exitOnErrors(const char *tool, const std::function<int()> &body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    fmt::print(stderr, "{}: error: out of memory\n", tool);
  } catch (const std::exception &error) {
    fmt::print(stderr, "{}: error: {}\n", tool, error.what());
  } catch (...) {
    fmt::print(stderr, "{}: error: unknown exception\n", tool);
  }
  return 1;
}
