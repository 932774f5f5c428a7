//===- MoeDialect.h - the moe dialect ---------------------------*- C++ -*-===//
//
// Declarations of the moe dialect, its enums, attributes and ops.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_MOEDIALECT_H
#define MOE_MOEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "moert/KernelTypes.h"
#include "llvm/ADT/DenseSet.h"

#include "moe/MoeDialect.h.inc"
#include "moe/MoeEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moe/MoeAttrs.h.inc"

#include "moe/MoeInterfaces.h.inc"

namespace mlir::moe::OpTrait {
/// The marker trait of backward ops (MoeInterfaces.td).
template <typename ConcreteType>
class Backward : public ::mlir::OpTrait::TraitBase<ConcreteType, Backward> {};
/// The marker trait of the optimizer's ops (MoeInterfaces.td).
template <typename ConcreteType>
class OptimizerStep
    : public ::mlir::OpTrait::TraitBase<ConcreteType, OptimizerStep> {};
} // namespace mlir::moe::OpTrait

namespace mlir::tensor {
class ExtractSliceOp;
class PadOp;
} // namespace mlir::tensor

namespace mlir::moe {
/// The rows of a [..., last] tensor, which the row-wise ops (norms, linear
/// layers, softmax, routing) treat one row at a time: the product of every
/// dimension but the last, also when the last is 0.
int64_t rowsOf(Value value);
/// The type of a GEMM's result over operands of `operandType` (a tensor or
/// an element type): bf16 operands give f32 (f32 accumulation), f32 and f64
/// give themselves.
Type gemmResultType(Type operandType);
/// The type of moe.attention's log-sum-exp for a query of `queryType`
/// ([batch, seq, heads, head_dim]): [batch, heads, seq] of the GEMMs'
/// result element type; null for another type.
Type attentionLseType(Type queryType);
/// Whether `op` computes in f32 from its float operands: each is f32, or
/// bf16 where the op widens it as it reads it (WidenableOperandOpInterface).
bool computesInF32(Operation *op);
/// Checks that `op` is a conversion the interpreter and the targets
/// implement: arith.truncf of an f32 tensor to bf16, rounding to nearest
/// even (the default), or arith.extf of a bf16 tensor to f32.
LogicalResult checkPrecisionConversion(Operation *op);
/// Whether `slice` takes a leading run of its tensor's storage: static
/// shapes, offsets 0, strides 1, every size but the first the source's.
/// Such a slice is a view of its source's start (FlatRuns.cpp).
bool isLeadingRun(tensor::ExtractSliceOp slice);
/// Checks isLeadingRun, the one slice the interpreter and the targets take.
LogicalResult checkLeadingRun(tensor::ExtractSliceOp slice);
/// Checks that `pad` is the one pad the interpreter and the targets take:
/// static shapes, zeros appended along the first dimension only.
LogicalResult checkZerosAfter(tensor::PadOp pad);
/// The value whose storage `op`'s result aliases: a reshape's
/// (ViewLikeOpInterface) or a leading run's source; null for other ops.
Value viewSource(Operation *op);
/// `value` extended along its first dimension to `extent` with zeros (a
/// tensor.pad that checkZerosAfter accepts).
Value padWithZerosAfter(OpBuilder &b, Location loc, Value value,
                        int64_t extent);
/// The first `extent` entries of `value`'s first dimension (a leading run).
Value leadingRun(OpBuilder &b, Location loc, Value value, int64_t extent);
/// The kernels' form of moe.rope's `scaling` (RopeScaling{} where null),
/// and the attribute of a scaled one (not RopeKind::Default).
moert::RopeScaling ropeScalingOf(RopeScalingAttr scaling);
/// The runtime's spelling of a gate's scoring (the same values).
moert::GateScoring runtimeGateScoring(GateScoring scoring);
RopeScalingAttr ropeScalingAttr(MLIRContext *context,
                                const moert::RopeScaling &scaling);
/// `value`, or the f32 value it rounds where it is an arith.truncf's result
/// (mixed precision's bf16 copy of a weight or an activation).
Value beforeBf16Copy(Value value);
/// Fails where `function` has no body of one block to `purpose`
/// ("differentiate"): a declaration, or a body of several blocks. `prefix`
/// begins the error ("moe-autodiff: ").
LogicalResult requireOneBlockBody(FunctionOpInterface function,
                                  StringRef prefix, StringRef purpose);
/// Names `function`'s results (moe.output) all at once: naming one at a
/// time rebuilds the list of result attributes each time, and a train step
/// has a result per parameter and metric.
void setOutputNames(FunctionOpInterface function, ArrayRef<std::string> names);
/// Whether `value` rounds to a finite number of `type`'s element type (any
/// value does for a type that is not a float).
bool isFiniteIn(double value, Type type);
} // namespace mlir::moe

#define GET_OP_CLASSES
#include "moe/MoeOps.h.inc"

namespace mlir::moe {

/// The keys each query of moe.attention or moe.attention_grad sees.
template <typename AttentionLikeOp>
moert::AttentionMask attentionMask(AttentionLikeOp op) {
  return {op.getCausal(), static_cast<int64_t>(op.getWindow().value_or(0))};
}

/// Name of the discardable attribute on an ml_program.global that holds its
/// #moe.init initializer.
inline constexpr llvm::StringLiteral kInitAttrName = "moe.init";

/// String attributes naming a function's arguments and results, by which
/// tools bind inputs and outputs (e.g. "input_ids", "labels", "loss").
inline constexpr llvm::StringLiteral kInputAttrName = "moe.input";
inline constexpr llvm::StringLiteral kOutputAttrName = "moe.output";

/// Unit attribute on an ml_program.global that autodiff and the optimizer
/// treat as a parameter. Globals without it are training state (e.g. the
/// per-layer auxiliary-loss coefficients).
inline constexpr llvm::StringLiteral kTrainableAttrName = "moe.trainable";

/// The config.json text a module was imported from (on the module), which
/// compiled models and their checkpoints carry.
inline constexpr llvm::StringLiteral kConfigAttrName = "moe.config";
/// The options of the passes that decide how a module trains (autodiff,
/// mixed precision, the optimizer, adaptive aux coefficients): a dictionary
/// from pass name to "key=value ..." on the module, which compiled models
/// and their checkpoints carry (moe/Transforms/TrainingSettings.h).
inline constexpr llvm::StringLiteral kTrainingAttrName = "moe.training";
/// On a global of an upcycled model: how its initial value comes from the
/// dense checkpoint (moert/Upcycle.h's rule, as text), set by moe-upcycle.
inline constexpr llvm::StringLiteral kUpcycleAttrName = "moe.upcycle";

/// Unit attribute on an ml_program.global of training state that is zero
/// between optimizer steps (a gradient accumulator): checkpoints leave it
/// out, and resuming starts it at zero. Never on a moe.trainable global.
inline constexpr llvm::StringLiteral kTransientAttrName = "moe.transient";
/// Unit attribute on an ml_program.global whose value is the config's (an
/// aux- or z-loss coefficient), set by the importer; moe-adaptive-aux,
/// which makes its coefficients training state, removes it.
inline constexpr llvm::StringLiteral kConfigConstantAttrName =
    "moe.config_constant";
/// The globals of `module` that hold values of its config, not training
/// state: marked kConfigConstantAttrName (never with kTrainableAttrName or
/// kTransientAttrName) and stored by no function. Checkpoints leave them
/// out, and a run that resumes one or reads weights gives them their
/// initializers' values, so that a changed config holds.
llvm::DenseSet<StringAttr> configConstantGlobals(ModuleOp module);
/// On a module split by moe-accumulate-gradients: the micro-batches of an
/// optimizer step (an i64 >= 2), i.e. @train_micro_step's calls per step
/// plus one; what moe.training records of the pass, if it does.
inline constexpr llvm::StringLiteral kMicroBatchesAttrName =
    "moe.micro_batches";

/// The memory plan of moe-plan-memory: per-result arena offsets (-1 where a
/// result has no arena buffer) on ops, the arena size on functions, and a
/// unit marker on ops that write a global's storage in place.
inline constexpr llvm::StringLiteral kArenaOffsetsAttrName =
    "moe.arena_offsets";
inline constexpr llvm::StringLiteral kArenaBytesAttrName = "moe.arena_bytes";
inline constexpr llvm::StringLiteral kInPlaceAttrName = "moe.in_place";

/// The globals whose storage `op`'s results may take, one per result, or
/// none: `op` may update operands in place (InPlaceOpInterface), and each
/// result is only stored back to the global its operand was loaded from.
/// moe-plan-memory marks such ops kInPlaceAttrName, which requires it.
llvm::SmallVector<llvm::StringRef> inPlaceGlobals(Operation *op);

/// The transformer layer (0-based) an op belongs to, an i64 set by the
/// importer on every op of `model.layers.N` and kept by passes that clone or
/// replace ops. Recomputation segments the forward by it.
inline constexpr llvm::StringLiteral kLayerAttrName = "moe.layer";
/// Marks the forward ops that recomputation clones into the backward (a
/// unit attribute, kept with the layer): their flops are the hardware's,
/// not the model's.
inline constexpr llvm::StringLiteral kRecomputedAttrName = "moe.recomputed";
/// Layers are unrolled in the IR; real models have a few hundred at most.
/// Analyses size per-layer tables by the largest index.
inline constexpr int64_t kMaxLayers = 4096;

/// On an ml_program.global of an SPMD program: the global is this rank's
/// part, along the given axis (an i64; 0 today), of a tensor split evenly
/// over the expert axis of the program's grid (expert weights under expert
/// parallelism), and replicated over its other axes. Globals without it are
/// replicated: every rank holds all of them.
inline constexpr llvm::StringLiteral kShardedAttrName = "moe.sharded";

/// On a function: it is an SPMD program, the program of one rank of this
/// shard.grid (a flat symbol reference). moe-autodiff sums the gradients of
/// its replicated trainable globals over the grid, and those of its sharded
/// ones over the grid's replica axes.
inline constexpr llvm::StringLiteral kSpmdGridAttrName = "moe.spmd_grid";

/// The grid of an SPMD program is [P], or [P/Q, Q] when Q ranks share the
/// experts: every axis splits the batch, the last (the expert axis) also
/// splits the experts, and the others (replica axes) hold P/Q copies of each
/// rank's experts, as Megatron-LM's expert data parallelism. Collectives
/// over the whole batch name every axis.
llvm::SmallVector<int16_t> batchGridAxes(llvm::ArrayRef<int64_t> gridShape);
int16_t expertGridAxis(llvm::ArrayRef<int64_t> gridShape);
llvm::SmallVector<int16_t> replicaGridAxes(llvm::ArrayRef<int64_t> gridShape);
/// The axes over which a parameter of an SPMD program has copies: the
/// replica axes for a sharded one, every axis for a replicated one.
/// moe-autodiff sums its gradient over them.
llvm::SmallVector<int16_t> parameterCopyAxes(llvm::ArrayRef<int64_t> gridShape,
                                             bool sharded);

/// On an ml_program.global of training state under the distributed
/// optimizer (moe-distributed-optimizer): the global is this rank's part
/// (flat, contiguous, equal) of a tensor shaped like the rank's own value
/// of the referenced parameter (a flat symbol reference), split over that
/// parameter's copy axes (parameterCopyAxes) in the order they list.
inline constexpr llvm::StringLiteral kOptimizerPartAttrName =
    "moe.optimizer_part";

/// The module's #moe.target (see moe-attach-target).
inline constexpr llvm::StringLiteral kTargetAttrName = "moe.target";

/// A code-generation target the compiler knows and the facts it needs.
struct TargetFacts {
  llvm::StringLiteral name;
  /// Smallest alignment, in bytes, of the buffers its kernels receive.
  int64_t minAlignment;
};
llvm::ArrayRef<TargetFacts> knownTargets();
/// The #moe.target of target `name` with its default facts, or null when
/// no target has that name.
TargetAttr getDefaultTarget(MLIRContext *context, llvm::StringRef name);
/// The module's #moe.target, or the CPU target's when it has none.
TargetAttr getModuleTarget(Operation *module);

/// The layer of `op` (its moe.layer), if it has one.
std::optional<int64_t> getLayer(Operation *op);
/// Gives `to` the origin of `from`: its layer, if it has one, and its
/// recomputation mark.
void copyOrigin(Operation *from, Operation *to);
/// Whether `op` is a forward op that recomputation cloned.
inline bool isRecomputed(Operation *op) {
  return op->hasAttr(kRecomputedAttrName);
}

/// The bytes of a static tensor type (at least one per element).
int64_t byteSize(Type tensorType);
/// The most bytes a static tensor may hold, 2^48 (256 TiB): far past any
/// model's tensors (a config's are held to 2^40 elements), and far enough
/// below int64's limit that byteSize cannot wrap and an int64 sum holds
/// 2^15 such tensors. The tools check IR they parse against it.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 48;
/// The most bytes a function's arena or a module's globals may take
/// together, 2^56: the planner and the emitters check their sums of
/// tensors (each at most kMaxTensorBytes) against it after every one, so
/// that no sum wraps, whatever the number of tensors.
constexpr int64_t kMaxPlanBytes = int64_t(1) << 56;
/// Checks every static tensor type under `root` (results, block arguments,
/// ml_program.globals) holds at most kMaxTensorBytes; emits an error at the
/// first that does not.
LogicalResult verifyTensorSizes(Operation *root);

/// Rows per expert buffer: ceil(capacityFactor * tokens * topK / numExperts).
/// The product is rounded first so that, e.g., 1.1 * 100 gives 110, not 111.
int64_t expertCapacity(double capacityFactor, int64_t tokens, int64_t topK,
                       int64_t numExperts);

/// The largest magnitude a gating logit normalized with `lambda` reaches
/// over `numExperts` experts: lambda sqrt(numExperts - 1), since a row
/// centred and divided by its population std lies within sqrt(n - 1) of 0.
/// The verifiers, moe-gate-norm and the config importer keep it an f32.
double largestNormalizedLogit(double lambda, int64_t numExperts);

/// Attaches the moe interfaces, and upstream ViewLikeOpInterface, to the
/// upstream ops a model uses: DifferentiableOpInterface and
/// ViewLikeOpInterface to tensor.expand_shape and tensor.collapse_shape,
/// InPlaceOpInterface to arith.addi, DifferentiableOpInterface to the shard
/// collectives.
void registerExternalModels(DialectRegistry &registry);
/// The DifferentiableOpInterface part of registerExternalModels (MoeVjp.cpp).
void registerDifferentiableExternalModels(DialectRegistry &registry);
/// DifferentiableOpInterface on the shard dialect's collectives
/// (CollectiveVjp.cpp).
void registerCollectiveVjpModels(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_MOEDIALECT_H
