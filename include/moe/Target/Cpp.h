//===- Cpp.h - C++ emission of planned moe modules --------------*- C++ -*-===//

#ifndef MOE_TARGET_CPP_H
#define MOE_TARGET_CPP_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::moe {

/// Writes `module` (f32, planned by moe-plan-memory) as C++ against the
/// model ABI (moert/ModelAbi.h): one function per func.func calling the CPU
/// kernels (moert/CpuKernels.h) on buffers at their planned arena offsets,
/// the globals' layout and initializers, and `moe_get_model()`.
LogicalResult translateToCpp(ModuleOp module, llvm::raw_ostream &os,
                             llvm::StringRef modelName);

} // namespace mlir::moe

#endif // MOE_TARGET_CPP_H
