//===- Upcycle.h - a MoE model's initial weights from a dense one -*- C++
//-*-===//
//
// moe-upcycle records, for every global of the MoE model it writes, how its
// initial value comes from the dense model's checkpoint: an `UpcycleRule`,
// kept as text in the IR (`moe.upcycle`) and in the model ABI. moe-run and
// the training binaries (`--init-from DENSE`) execute the rules here, so
// both build the same tensors.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_UPCYCLE_H
#define MOERT_UPCYCLE_H

#include "moert/WeightSource.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace moert {

struct UpcycleRule {
  enum class Kind {
    /// The dense tensor of the same shape, times `scale` (1: as it is).
    Copy,
    /// Stacked experts from a dense FFN projection: `copies` copies, each
    /// split along the dense tensor's FFN axis `axis` into `parts` parts
    /// (expert c * parts + g holds part g of copy c), times `scale`, plus
    /// normal noise of std `noiseStd`, drawn per element.
    Experts,
    /// A fresh router [copies * parts, hidden]: row c of a normal draw
    /// (the global's initializer std) repeated for the `parts` experts of
    /// copy c, so that they tie (granular upcycling's virtual groups).
    Router,
    /// Zeros (a shared expert's gate: sigmoid(0) = 1/2 for every token).
    Zeros,
  };
  Kind kind = Kind::Copy;
  std::string source;
  int64_t copies = 1, parts = 1, axis = 0;
  double scale = 1, noiseStd = 0;
};

/// "copy SOURCE" (with " scale=S" where not 1), "experts SOURCE copies=E
/// parts=G axis=A scale=S noise=N", "router copies=E parts=G" or "zeros".
std::string formatUpcycleRule(const UpcycleRule &rule);
/// Throws moert::Error naming `where` and what is wrong.
UpcycleRule parseUpcycleRule(const std::string &text, const std::string &where);

/// The whole tensor of global `name` (`shape`, F32 or F64), built by `rule`
/// from `dense`; random values are pure functions of (seed, name, index).
OwnedTensor upcycleTensor(const UpcycleRule &rule, const WeightSource &dense,
                          const std::string &name,
                          const std::vector<int64_t> &shape, DType dtype,
                          uint64_t seed, double initStd);

/// Throws unless every tensor of `dense` is one of `sources` (the dense
/// tensors that the model's rules read) or one that a model may ignore.
void checkDenseTensorsUsed(const WeightSource &dense,
                           const std::set<std::string> &sources);

} // namespace moert

#endif // MOERT_UPCYCLE_H
