//===- ErrorTestUtils.h - the errors that the unit tests expect -*- C++ -*-===//
//
// Catching a moert::Error, for every unit test: the reference tests
// (TestUtils.h) and the CPU and CUDA kernel tests (CpuTestUtils.h,
// CudaTestUtils.h).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_ERRORTESTUTILS_H
#define MOE_TEST_UNIT_ERRORTESTUTILS_H

#include "moert/Error.h"

#include <functional>
#include <string>

namespace moe::test {

/// The message of the moert::Error that `fn` throws, or "" if none (the
/// reference and CPU kernels throw at once).
inline std::string errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const moert::Error &error) {
    return error.what();
  }
  return "";
}

inline bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_ERRORTESTUTILS_H
