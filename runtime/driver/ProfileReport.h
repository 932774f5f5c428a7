//===- ProfileReport.h - where a profiled step's time goes ------*- C++ -*-===//
//
// A model compiled with moe-compile --profile counts the calls and time of
// each kernel call of its functions (moert/Profile.h on the CPU, CUDA
// events on the GPU: moert/CudaTarget.h). The driver leaves
// out the first step (it pays for page faults and for creating the GEMM
// primitives) and reports the rest per kernel and per call site, with the
// arithmetic and memory rates the cost model's per-call figures imply.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_PROFILEREPORT_H
#define MOERT_DRIVER_PROFILEREPORT_H

#include "moert/ModelAbi.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace moert {

class StepProfile {
public:
  /// The profile of a step that calls `functions` (a train step, and the
  /// micro steps before it): their sites with the same kernel and place
  /// add up.
  explicit StepProfile(const std::vector<const moe_function *> &functions);

  /// Whether the functions were compiled with profile sites.
  bool enabled() const { return !sites.empty(); }
  /// After each step, which took `seconds`.
  void recordStep(double seconds);
  /// The tables per kernel and per call site (layer numbers folded).
  std::string format() const;
  /// Every site's figures, for the metrics file.
  nlohmann::json json() const;

private:
  struct Totals {
    int64_t calls = 0;
    double seconds = 0;
  };
  /// Each site's totals over the steps reported.
  std::vector<Totals> siteTotals() const;
  /// The steps reported and their time.
  int64_t steps() const;
  double seconds() const;

  /// The functions' names, joined by " + ".
  std::string name;
  std::vector<const moe_profile_site *> sites;
  int64_t stepsRecorded = 0;
  double secondsRecorded = 0;
  /// The first step: its time and its sites' counters.
  double warmUpSeconds = 0;
  std::vector<Totals> warmUp;
};

} // namespace moert

#endif // MOERT_DRIVER_PROFILEREPORT_H
