//===- Error.h - runtime errors ---------------------------------*- C++ -*-===//
//
// The runtime reports bad input (files, shapes, ids) by throwing moert::Error
// with a message that names the file or tensor at fault; tools catch it at
// their top level and exit non-zero.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ERROR_H
#define MOERT_ERROR_H

#include <fmt/core.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace moert {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

/// A target's allocation that failed, the message saying why;
/// moert::TargetBuffer names the buffer it was for.
class AllocationError : public Error {
public:
  using Error::Error;
};

/// An error that a rank of a job of several processes meets as it joins
/// the job's group, before the caller knows its rank: it carries the rank,
/// for the message to name (mpirun interleaves the ranks' output).
class GroupError : public Error {
public:
  GroupError(const std::string &message, int32_t rank)
      : Error(message), rank(rank) {}
  int32_t rank;
};

/// Throws an Error whose message is fmt::format(format, args...).
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args &&...args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

std::string describeErrno();

/// Writes `line` and a newline to stderr as far as stderr takes it: a
/// closed or full stderr must not turn a message into an exception (as
/// fmt::print's failed write would).
void printToStderr(const std::string &line);

/// "3.8 GB", "12.5 MB", or "640 bytes".
std::string describeBytes(int64_t bytes);

/// What a std::bad_alloc that reaches a tool's top level says.
inline constexpr const char *kOutOfMemory =
    "out of memory: an allocation failed (is a memory limit, such as "
    "ulimit -v, too low?)";

/// The one top-level error path of every tool and binary: runs `body` and
/// turns an exception escaping it, or a successful body's output that did
/// not all reach stdout, into one line "<tool>: error: <message>" on stderr
/// and exit code 1.
int exitOnErrors(const char *tool, const std::function<int()> &body);

} // namespace moert

#endif // MOERT_ERROR_H
