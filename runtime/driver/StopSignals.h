//===- StopSignals.h - SIGINT and SIGTERM between steps ---------*- C++ -*-===//
//
// A training run stops between steps on SIGINT or SIGTERM, writing the
// checkpoint of its last step (Megatron-LM's --exit-signal-handler); a
// second signal, or one before training starts, ends the process at once,
// as by default. The ranks of a job agree on the step to stop after, so
// that they write its checkpoint together, whichever of them was signalled.
//
// The signals are taken by a thread of their own (sigwait), never by a
// handler: oneDNN 2.6's JIT sgemm kernels (AVX2 and AVX-512) use the stack
// pointer as a general register (oneDNN issue #4845), so a handler that
// interrupts one pushes its frame onto whatever that register points at,
// the heap included, and the process later dies in malloc or with SIGSEGV.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_DRIVER_STOPSIGNALS_H
#define MOERT_DRIVER_STOPSIGNALS_H

struct moe_model;

namespace moert {

struct RankGroup;

/// Blocks SIGINT and SIGTERM in the calling thread and starts the thread
/// that takes them. Call it first in main: threads started later (OpenMP's,
/// MPI's, CUDA's) inherit the blocked mask, and a thread that did not block
/// them would take them by default, ending the process.
void takeStopSignals();

/// From now on the first signal asks the run to stop (stopRequested); a
/// second ends the process at once.
void allowStopBetweenSteps();

/// The signal that asked the run to stop, or 0.
int stopRequested();

/// The signal that asked any rank of `group` to stop, or 0: a collective,
/// which every rank calls at the same point of the run.
int stopRequestedOnAnyRank(const moe_model &model, const RankGroup &group);

/// Returns once every rank of `group` has called it.
void waitForEveryRank(const moe_model &model, const RankGroup &group);

} // namespace moert

#endif // MOERT_DRIVER_STOPSIGNALS_H
