//===- SharedCores.h - ranks that run on the same cores ---------*- C++ -*-===//
//
// mpirun binds each of up to two ranks to a core, and no rank where there
// are more ranks than cores: then every rank of a host may run on all of
// its cores, and each taking them all for its threads would run several
// threads a core. The driver divides a rank's default thread count by the
// ranks that share its cores.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_SHAREDCORES_H
#define MOERT_DRIVER_SHAREDCORES_H

#include "moert/GlobalPlacement.h"
#include "moert/ModelAbi.h"

#include <cstdint>

namespace moert {

/// How many ranks of `group`, this one included, run on this host with
/// the same CPU affinity as this one (a collective: every rank calls it).
int64_t ranksSharingCores(const moe_model &model, const RankGroup &group);

} // namespace moert

#endif // MOERT_DRIVER_SHAREDCORES_H
