//===- Error.cpp - runtime errors -----------------------------------------===//

#include "moert/Error.h"
#include "moert/StandardStreams.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

std::string moert::describeErrno() { return std::strerror(errno); }

void moert::printToStderr(const std::string &line) {
  std::fprintf(stderr, "%s\n", line.c_str());
}

std::string moert::describeBytes(int64_t bytes) {
  if (bytes >= 1000000000)
    return fmt::format("{:.1f} GB", bytes / 1e9);
  if (bytes >= 1000000)
    return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{} bytes", bytes);
}

int moert::exitOnErrors(const char *tool, const std::function<int()> &body) {
  try {
    int status = body();
    if (status == 0)
      requireStdoutWritten();
    return status;
  } catch (const std::bad_alloc &) {
    printToStderr(fmt::format("{}: error: {}", tool, kOutOfMemory));
  } catch (const std::exception &error) {
    printToStderr(fmt::format("{}: error: {}", tool, error.what()));
  } catch (...) {
    printToStderr(fmt::format("{}: error: unknown exception", tool));
  }
  return 1;
}
