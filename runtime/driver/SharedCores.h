//===- SharedCores.h - ranks that run on the same cores ---------*- C++ -*-===//
//
// OpenMPI binds each of 2 ranks or fewer to a core, more ranks to a
// socket, and none where ranks outnumber cores: ranks of one socket, or of
// a whole host, may then run on the same cores, and each taking them all
// for its threads would run several threads a core. The driver divides a
// rank's default thread count by the ranks that share its cores.
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
