//===- Error.cpp - runtime errors -----------------------------------------===//

#include "moert/Error.h"
#include "moert/StandardStreams.h"

#include <cerrno>
#include <cstring>

std::string moert::describeErrno() { return std::strerror(errno); }

int moert::exitOnErrors(const char *tool, const std::function<int()> &body) {
  try {
    int status = body();
    if (status == 0)
      requireStdoutWritten();
    return status;
  } catch (const std::bad_alloc &) {
    fmt::print(stderr,
               "{}: error: out of memory: an allocation failed (is a memory "
               "limit, such as ulimit -v, too low?)\n",
               tool);
  } catch (const std::exception &error) {
    fmt::print(stderr, "{}: error: {}\n", tool, error.what());
  } catch (...) {
    fmt::print(stderr, "{}: error: unknown exception\n", tool);
  }
  return 1;
}
