//===- Error.h - runtime errors ---------------------------------*- C++ -*-===//
//
// The runtime reports bad input (files, shapes, ids) by throwing moert::Error
// with a message that names the file or tensor at fault; tools catch it at
// their top level and exit non-zero.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ERROR_H
#define MOERT_ERROR_H

#include <stdexcept>
#include <string>

namespace moert {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

/// Throws an Error whose message is the concatenation of the arguments.
template <typename... Parts> [[noreturn]] void fail(const Parts &...parts);

std::string describeErrno();

} // namespace moert

#include <sstream>

template <typename... Parts>
[[noreturn]] void moert::fail(const Parts &...parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

#endif // MOERT_ERROR_H
