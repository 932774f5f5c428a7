//===- Error.cpp - runtime errors -----------------------------------------===//

#include "moert/Error.h"
#include "moert/StandardStreams.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

std::string moert::describeErrno() { return std::strerror(errno); }

std::string moert::describeBytes(int64_t bytes) {
  if (bytes >= 1000000000)
    return fmt::format("{:.1f} GB", bytes / 1e9);
  if (bytes >= 1000000)
    return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{} bytes", bytes);
}

namespace {

/// The error line, written as far as stderr takes it: a stderr that is
/// closed or full must not turn the error into an abort (fmt::print throws
/// when its write fails).
void printError(const char *tool, const char *message) {
  std::fprintf(stderr, "%s: error: %s\n", tool, message);
}

} // namespace

int moert::exitOnErrors(const char *tool, const std::function<int()> &body) {
  try {
    int status = body();
    if (status == 0)
      requireStdoutWritten();
    return status;
  } catch (const std::bad_alloc &) {
    printError(tool, kOutOfMemory);
  } catch (const std::exception &error) {
    printError(tool, error.what());
  } catch (...) {
    printError(tool, "unknown exception");
  }
  return 1;
}
