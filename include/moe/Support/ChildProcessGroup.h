//===- ChildProcessGroup.h - a program in a group of its own ----*- C++ -*-===//
//
// How moe-compile runs the host compiler: when moe-compile is stopped, the
// compiler's whole process tree stops first, so that no linker goes on
// writing beside the output after moe-compile has cleaned up.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_CHILDPROCESSGROUP_H
#define MOE_SUPPORT_CHILDPROCESSGROUP_H

#include "llvm/ADT/ArrayRef.h"

#include <string>

namespace mlir::moe {

/// Runs `command` (a program's path, then its arguments) in a new process
/// group and waits for it. A SIGINT, SIGTERM or SIGHUP reaching this process
/// meanwhile, on any thread, stops the whole group (SIGTERM, then SIGKILL
/// after 5 s, to the processes that outlive the program too); once none is
/// left, the handler that was in place before (LLVM's, which removes the
/// files of RemoveFileOnSignal and ends the process by the signal) takes
/// it. The program starts with SIGTTOU and SIGTTIN ignored (outside the
/// terminal's foreground group, they would stop it), and a SIGKILL sent to
/// this process's group alone (`kill -KILL -PGID`) does not reach it.
/// Returns as llvm::sys::ExecuteAndWait does: the exit status, -1 with
/// `error` set when the program did not start, -2 when a signal ended it.
int runInOwnProcessGroup(llvm::ArrayRef<std::string> command,
                         std::string &error);

} // namespace mlir::moe

#endif // MOE_SUPPORT_CHILDPROCESSGROUP_H
