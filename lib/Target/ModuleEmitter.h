//===- ModuleEmitter.h - the emitter every target shares --------*- C++ -*-===//
//
// Lays out a planned module as source against the model ABI: the state
// region (every global at an offset aligned as the module's #moe.target
// says), one function per func.func as a straight-line sequence of kernel
// calls (KernelCall.h) on pointers into the state, the arena and the
// caller's inputs, constants as static arrays, fused loops, and the
// descriptors of the globals and functions. The target (TargetInfo.h)
// writes the pieces that differ.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_TARGET_MODULEEMITTER_H
#define MOE_LIB_TARGET_MODULEEMITTER_H

#include "KernelCall.h"
#include "TargetInfo.h"

#include "moe/Analysis/OpCost.h"
#include "moe/MoeDialect.h"
#include "moe/Target/Translations.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <optional>
#include <string>

namespace mlir::moe::target {

/// Writes `module` (planned by moe-plan-memory for `target`) as source of
/// `target`.
LogicalResult emitModule(ModuleOp module, const TargetInfo &target,
                         raw_ostream &os, const TranslateOptions &options);

class ModuleEmitter {
public:
  ModuleEmitter(ModuleOp module, const TargetInfo &target, raw_ostream &os,
                const TranslateOptions &options)
      : module(module), target(target), os(os), options(options) {}

  LogicalResult emit();

private:
  LogicalResult emitFunction(func::FuncOp function);
  LogicalResult emitOp(Operation *op);
  LogicalResult emitKernelCall(Operation *op);
  LogicalResult emitConstant(arith::ConstantOp op);
  void emitFusedElementwise(FusedElementwiseOp op);
  /// A copy of `bytes` bytes that `op` makes, timed when profiling.
  void emitCopy(Operation *op, StringRef destination, StringRef source,
                int64_t bytes);
  /// Prices `op`, calling `kernel`, with the cost model (a copy passes its
  /// cost): adds its model FLOPs to the function's and, with --profile,
  /// opens the scope that times the statements emitted until
  /// closeKernelScope in a new site of the function.
  LogicalResult openKernelScope(Operation *op, StringRef kernel,
                                std::optional<OpCost> cost = std::nullopt);
  void closeKernelScope();
  /// Declares the C++ pointer of each result of `op`: its arena buffer, or
  /// the storage of the global it is stored to in place.
  LogicalResult declareResults(Operation *op);
  /// The C++ expression of kernel argument `arg`, declaring what it needs.
  std::string argument(const KernelArg &arg);
  std::string shapeArray(ArrayRef<int64_t> shape);
  /// The config the module was imported from (moe.config), or "".
  std::string configJson() {
    auto config = module->getAttrOfType<StringAttr>(kConfigAttrName);
    return config ? config.str() : "";
  }
  /// The training settings the module records (kTrainingAttrName) as one
  /// "pass.key=value ..." list, in pass and key order, or "".
  std::string trainingSettings();
  std::string descriptor(StringRef name, Type type);

  /// The pointer expression of `value`.
  std::string p(Value value) { return names.lookup(value); }
  std::string fresh(StringRef prefix) {
    return llvm::formatv("{0}{1}", prefix, counter++).str();
  }
  /// The row counts of expert buffer `buffer`: its dispatch's, or a full
  /// array when it comes from elsewhere.
  std::string rowCounts(Value buffer);

  ModuleOp module;
  const TargetInfo &target;
  raw_ostream &os;
  llvm::StringMap<int64_t> globalOffsets;
  DenseMap<Value, std::string> names;
  DenseMap<Value, std::string> dispatchCounts;
  std::string statics; // namespace-scope arrays: shapes, constants
  llvm::raw_string_ostream staticsOs{statics};
  std::string body;
  llvm::raw_string_ostream out{body};
  SmallVector<std::string> functionEntries;
  const TranslateOptions &options;
  /// The function being emitted: its profile sites' array and entries, the
  /// queue fills its expert ops are priced at and its model FLOPs so far.
  std::string profileSites;
  SmallVector<std::string> profileSiteEntries;
  std::optional<QueueFill> queueFill;
  double modelFlops = 0;
  llvm::StringSet<> functionNames;
  int counter = 0;
};

} // namespace mlir::moe::target

#endif // MOE_LIB_TARGET_MODULEEMITTER_H
