//===- Error.cpp - runtime errors -----------------------------------------===//

#include "moert/Error.h"

#include <cerrno>
#include <cstring>

std::string moert::describeErrno() { return std::strerror(errno); }
