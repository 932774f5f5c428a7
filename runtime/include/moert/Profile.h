//===- Profile.h - timing a profiled model's kernel calls -------*- C++ -*-===//
//
// moe-compile --profile wraps each kernel call of the generated functions in
// a ProfileScope on the call's moe_profile_site (ModelAbi.h). The CPU
// target's kernels return when their work is done, so the host clock times
// each of them. The training driver reports the sites (ProfileReport.h).
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_PROFILE_H
#define MOERT_PROFILE_H

#include "moert/ModelAbi.h"

#include <chrono>

namespace moert {

/// Adds the time from its construction to its destruction, and one call,
/// to a site.
class ProfileScope {
public:
  explicit ProfileScope(moe_profile_site &site)
      : site(site), start(Clock::now()) {}
  ~ProfileScope() {
    site.nanoseconds += std::chrono::duration_cast<std::chrono::nanoseconds>(
                            Clock::now() - start)
                            .count();
    ++site.calls;
  }
  ProfileScope(const ProfileScope &) = delete;
  ProfileScope &operator=(const ProfileScope &) = delete;

private:
  using Clock = std::chrono::steady_clock;
  moe_profile_site &site;
  Clock::time_point start;
};

} // namespace moert

#endif // MOERT_PROFILE_H
