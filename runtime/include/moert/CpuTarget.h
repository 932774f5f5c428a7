//===- CpuTarget.h - the model ABI's CPU target -----------------*- C++ -*-===//
//
// The moe_target of models compiled for the CPU (moe-translate --emit=cpp):
// OpenMP threads, host memory, copies that are memcpy.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPUTARGET_H
#define MOERT_CPUTARGET_H

#include "moert/ModelAbi.h"

extern "C" const moe_target moe_cpu_target;

#endif // MOERT_CPUTARGET_H
