//===- Evaluator.h - evaluate moe-dialect IR naively ------------*- C++ -*-===//
//
// The reference interpreter behind moe-run: walks a function op by op and
// applies the reference kernels. Globals (parameters and training state) are
// held by name; they come from a safetensors file or from their #moe.init
// initializers under a seed, and ml_program.global_store updates them. As
// one rank of an SPMD group it also evaluates the shard dialect's
// collectives.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_EVALUATOR_H
#define MOE_INTERPRETER_EVALUATOR_H

#include "moe/Interpreter/Collectives.h"
#include "moe/Interpreter/Tensor.h"
#include "moert/WeightSource.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"

#include <optional>

namespace mlir::moe {

/// The interpreter's dtype for an element type, or failure for one it does
/// not evaluate.
mlir::FailureOr<ref::DType> dtypeOf(mlir::Type elementType);

class Evaluator {
public:
  explicit Evaluator(mlir::ModuleOp module) : module(module) {}

  /// Gives every global its initial value: its `value` attribute when it has
  /// one, else its #moe.init initializer drawn under `seed`. A sharded
  /// global (moe.sharded) gets this rank's part of the values the whole
  /// tensor would get, so that P ranks start where one process does.
  /// Globals that `provided` holds are left to loadGlobals, but for the
  /// config's constants (moe::configConstantGlobals).
  mlir::LogicalResult
  initializeGlobals(uint64_t seed,
                    const moert::WeightSource *provided = nullptr);

  /// Takes the globals `source` holds (after initializeGlobals): every
  /// trainable one must be there with the global's shape (a sharded
  /// global: the whole tensor, of which it takes this rank's part), its
  /// values converted to the global's dtype; the others (optimizer state,
  /// coefficients) keep their initial values when absent. The config's
  /// constants (a fixed aux-loss coefficient) keep theirs anyway, as a
  /// binary's resume does. A tensor with no global is an error too. Errors
  /// name the tensor, the source and both shapes.
  mlir::LogicalResult loadGlobals(const moert::WeightSource &source);

  /// Builds every global with a `moe.upcycle` rule (a model moe-upcycle
  /// wrote) from the dense model's checkpoint `dense`, after
  /// initializeGlobals; every tensor of `dense` must feed a rule. Random
  /// values (noise, fresh routers) come from `seed`, as in the binaries.
  mlir::LogicalResult upcycleGlobals(const moert::WeightSource &dense,
                                     uint64_t seed);

  /// Every global a checkpoint holds (not the transient ones, nor the
  /// config's constants) as a whole tensor: sharded ones are gathered from
  /// every rank, so every rank of a group must call this together.
  llvm::StringMap<ref::Tensor> wholeGlobals() const;

  /// Writes `globals` to `path` (atomically); throws moert::Error.
  static void writeGlobals(const std::string &path,
                           const llvm::StringMap<ref::Tensor> &globals);

  /// Runs `func` on `arguments`; failure has been reported as a diagnostic
  /// at the location of the op that failed.
  mlir::FailureOr<std::vector<ref::Tensor>>
  run(mlir::func::FuncOp func, const std::vector<ref::Tensor> &arguments);

  /// Makes this evaluator one rank of an SPMD group: the shard dialect's
  /// collectives (on a grid of the group's size) go through
  /// `communicator`. Without one, a collective is an error.
  void setCommunicator(ref::Communicator *communicator) {
    this->communicator = communicator;
  }

  /// The value of global `name`, which must exist, for callers that perturb
  /// it (gradient checks).
  ref::Tensor &getGlobal(llvm::StringRef name) {
    return globals.find(name)->second;
  }

private:
  /// Where a global's value on this rank lies in the whole tensor that
  /// weights files and checkpoints hold: a contiguous run of it.
  struct Placement {
    /// The rank's tensor of which the global is a flat part: the global's
    /// own type, or its parameter's for an optimizer part
    /// (moe.optimizer_part).
    mlir::RankedTensorType rankTensor;
    /// The global's own elements: an optimizer part has
    /// ceil(rankTensor's / parts), the last parts padded with zeros.
    int64_t globalElements = 0;
    /// The ranks that share the experts, when the global is sharded.
    std::optional<ref::SubgroupCommunicator> experts;
    /// The ranks whose parts make `rankTensor`, for an optimizer part.
    std::optional<ref::SubgroupCommunicator> parts;

    std::vector<int64_t> wholeShape() const;
    /// The index of the global's first element in the whole tensor.
    int64_t offset() const;
    /// How many of the global's elements lie in the whole tensor; the rest
    /// are an optimizer part's padding.
    int64_t runElements() const;
  };
  mlir::FailureOr<Placement>
  placementOf(mlir::ml_program::GlobalOp global) const;
  /// The group of this rank in a collective over the axes that `axesOf`
  /// picks from the module's grid shape; errors go to `at`.
  mlir::FailureOr<ref::SubgroupCommunicator> gridGroupOf(
      mlir::Operation *at,
      llvm::function_ref<llvm::SmallVector<int16_t>(llvm::ArrayRef<int64_t>)>
          axesOf) const;

  mlir::ModuleOp module;
  llvm::StringMap<ref::Tensor> globals;
  ref::Communicator *communicator = nullptr;
};

} // namespace mlir::moe

#endif // MOE_INTERPRETER_EVALUATOR_H
