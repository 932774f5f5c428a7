//===- MoeDialect.cpp - the moe dialect -----------------------------------===//

#include "moe/MoeDialect.h"
#include "VerifierUtils.h"
#include "moert/Json.h"
#include "moert/StateNames.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/Sequence.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;

#include "moe/MoeDialect.cpp.inc"
#include "moe/MoeEnums.cpp.inc"
#include "moe/MoeInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "moe/MoeAttrs.cpp.inc"

void MoeDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moe/MoeAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "moe/MoeOps.cpp.inc"
      >();
}

namespace {
/// A module whose moe.training records moe-accumulate-gradients split into
/// N micro-batches carries moe.micro_batches = N: the step was built for N
/// (its gradients are scaled by 1/N), so another count trains wrongly.
LogicalResult verifyRecordedMicroBatches(Operation *module,
                                         DictionaryAttr settings) {
  auto recorded = settings.getAs<StringAttr>("moe-accumulate-gradients");
  if (!recorded)
    return success();
  int64_t count = 1;
  for (StringRef word : llvm::split(recorded.getValue(), ' '))
    if (word.consume_front("micro-batches=") && word.getAsInteger(10, count))
      return module->emitError() << "'" << kTrainingAttrName
                                 << "': moe-accumulate-gradients records "
                                    "micro-batches="
                                 << word << ", not a count";
  auto attr = module->getAttrOfType<IntegerAttr>(kMicroBatchesAttrName);
  if (count < 2 || (attr && attr.getInt() == count))
    return success();
  return module->emitError()
         << "'" << kMicroBatchesAttrName << "' is "
         << (attr ? std::to_string(attr.getInt()) : "absent")
         << ", but the step was built for " << count << " micro-batches (as '"
         << kTrainingAttrName << "' records)";
}
} // namespace

LogicalResult MoeDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attr) {
  StringRef name = attr.getName().strref();
  bool onGlobal = isa<ml_program::GlobalOp>(op);
  if (name == kInitAttrName) {
    if (!onGlobal || !isa<InitAttr>(attr.getValue()))
      return op->emitError()
             << "'" << name << "' must be a #moe.init on an ml_program.global";
    // Else the global would start as inf.
    double value = cast<InitAttr>(attr.getValue()).getValue().convertToDouble();
    Type type = cast<ml_program::GlobalOp>(op).getType();
    if (!isFiniteIn(value, type))
      return op->emitError() << "'" << name << "' value " << value
                             << " is beyond the range of " << type;
    return success();
  }
  if (name == kTrainableAttrName) {
    if (!onGlobal || !isa<UnitAttr>(attr.getValue()))
      return op->emitError() << "'" << name
                             << "' must be a unit attribute on an "
                                "ml_program.global";
    // A parameter gets gradients and Adam moments of its own type.
    Type type = cast<ml_program::GlobalOp>(op).getType();
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor ||
        !(tensor.getElementType().isF32() || tensor.getElementType().isF64()))
      return op->emitError()
             << "'" << name << "' needs a tensor of f32 or f64, not " << type;
    return success();
  }
  if (name == kUpcycleAttrName) {
    if (!onGlobal || !isa<StringAttr>(attr.getValue()))
      return op->emitError() << "'" << name
                             << "' must be a string (an upcycle rule) on an "
                                "ml_program.global";
    return success();
  }
  if (name == kConfigAttrName) {
    auto text = dyn_cast<StringAttr>(attr.getValue());
    if (!isa<ModuleOp>(op) || !text)
      return op->emitError() << "'" << name << "' must be a string on a module";
    // Passes, binaries and checkpoints read it back as a config.json.
    std::string problem;
    nlohmann::json config = moert::parseJsonWithin(
        text.getValue(), ("'" + name + "'").str(), problem);
    if (!problem.empty())
      return op->emitError() << problem;
    if (!config.is_object())
      return op->emitError()
             << "'" << name << "' must be a config.json text (a JSON object)";
    return success();
  }
  if (name == kTrainingAttrName) {
    auto settings = dyn_cast<DictionaryAttr>(attr.getValue());
    if (!isa<ModuleOp>(op) || !settings ||
        !llvm::all_of(settings, [](NamedAttribute entry) {
          return isa<StringAttr>(entry.getValue());
        }))
      return op->emitError()
             << "'" << name << "' must be a dictionary of strings on a module";
    return verifyRecordedMicroBatches(op, settings);
  }
  if (name == kArenaOffsetsAttrName) {
    auto offsets = dyn_cast<DenseI64ArrayAttr>(attr.getValue());
    if (!offsets || offsets.size() != static_cast<int64_t>(op->getNumResults()))
      return op->emitError() << "'" << name
                             << "' must be an array<i64> with one offset per "
                                "result";
    return success();
  }
  if (name == kArenaBytesAttrName) {
    if (!isa<IntegerAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' must be an integer";
    return success();
  }
  if (name == kLayerAttrName) {
    auto layer = dyn_cast<IntegerAttr>(attr.getValue());
    if (!layer || !layer.getType().isSignlessInteger(64) ||
        layer.getInt() < 0 || layer.getInt() >= kMaxLayers)
      return op->emitError()
             << "'" << name << "' must be an i64 layer index in [0, "
             << kMaxLayers << ")";
    return success();
  }
  if (name == kRecomputedAttrName) {
    // Recomputation clones a layer's forward ops, which have their layer.
    if (!isa<UnitAttr>(attr.getValue()) || !op->hasAttr(kLayerAttrName))
      return op->emitError()
             << "'" << name << "' must be a unit attribute "
             << "on an op of a layer ('" << kLayerAttrName << "')";
    return success();
  }
  if (name == kShardedAttrName) {
    auto axis = dyn_cast<IntegerAttr>(attr.getValue());
    auto global = dyn_cast<ml_program::GlobalOp>(op);
    if (!global || !axis || !axis.getType().isSignlessInteger(64) ||
        axis.getInt() != 0)
      return op->emitError() << "'" << name
                             << "' must be the split axis (0 : i64) on an "
                                "ml_program.global";
    return success();
  }
  if (name == kOptimizerPartAttrName) {
    auto global = dyn_cast<ml_program::GlobalOp>(op);
    auto of = dyn_cast<FlatSymbolRefAttr>(attr.getValue());
    auto type = global ? dyn_cast<RankedTensorType>(global.getType()) : nullptr;
    if (!of || !type || type.getRank() != 1)
      return op->emitError() << "'" << name
                             << "' must be a parameter's symbol on a 1-D "
                                "tensor ml_program.global";
    auto parameter =
        SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(op, of);
    if (!parameter)
      return op->emitError() << "'" << name << "': no parameter global " << of;
    auto whole = dyn_cast<RankedTensorType>(parameter.getType());
    std::optional<int64_t> wholeCount =
        whole ? detail::staticElementCount(whole.getShape()) : std::nullopt;
    std::optional<int64_t> partCount =
        detail::staticElementCount(type.getShape());
    if (whole && (!wholeCount || !partCount))
      return op->emitError()
             << "'" << name << "': " << type << " or " << of << "'s " << whole
             << " has more elements than an int64 holds";
    // Some number of parts, ceil(whole / part) the fewest, splits the
    // whole padded with zeros into parts of this size.
    auto isEqualPart = [&] {
      return *partCount > 0 && *wholeCount > 0 &&
             llvm::divideCeilSigned(
                 *wholeCount,
                 llvm::divideCeilSigned(*wholeCount, *partCount)) == *partCount;
    };
    if (!whole || !whole.hasStaticShape() || !type.hasStaticShape() ||
        whole.getElementType() != type.getElementType() || !isEqualPart() ||
        parameter->hasAttr(kShardedAttrName) != op->hasAttr(kShardedAttrName))
      return op->emitError()
             << "'" << name << "': " << type << " is no equal part of " << of
             << "'s " << parameter.getType()
             << " (padded with zeros to a multiple of the parts), sharded like "
                "it, of the same element type";
    return success();
  }
  if (name == kTransientAttrName) {
    if (!isa<ml_program::GlobalOp>(op) || !isa<UnitAttr>(attr.getValue()))
      return op->emitError()
             << "'" << name << "' must be a unit attribute on an "
             << "ml_program.global";
    // Transient globals are left out of checkpoints and parameter files.
    if (op->hasAttr(kTrainableAttrName))
      return op->emitError() << "'" << name << "' on a '" << kTrainableAttrName
                             << "' global: a parameter is saved";
    return success();
  }
  if (name == kConfigConstantAttrName) {
    if (!isa<ml_program::GlobalOp>(op) || !isa<UnitAttr>(attr.getValue()))
      return op->emitError()
             << "'" << name << "' must be a unit attribute on an "
             << "ml_program.global";
    // A config's value is neither learned nor zeroed between steps.
    for (StringRef other : {kTrainableAttrName, kTransientAttrName})
      if (op->hasAttr(other))
        return op->emitError()
               << "'" << name << "' on a '" << other << "' global";
    return success();
  }
  if (name == kMicroBatchesAttrName) {
    auto count = dyn_cast<IntegerAttr>(attr.getValue());
    if (!isa<ModuleOp>(op) || !count ||
        !count.getType().isSignlessInteger(64) || count.getInt() < 2)
      return op->emitError()
             << "'" << name << "' must be an i64 of at least 2 on a module";
    if (!isa_and_present<FunctionOpInterface>(
            SymbolTable::lookupSymbolIn(op, moert::kMicroStepFunction)))
      return op->emitError() << "'" << name << "' needs the function @"
                             << moert::kMicroStepFunction
                             << " that runs every micro-batch but the last";
    return success();
  }
  if (name == kSpmdGridAttrName) {
    auto grid = dyn_cast<FlatSymbolRefAttr>(attr.getValue());
    if (!isa<FunctionOpInterface>(op) || !grid ||
        !isa_and_present<shard::GridOp>(
            SymbolTable::lookupNearestSymbolFrom(op, grid)))
      return op->emitError()
             << "'" << name << "' must name a shard.grid on a function";
    return success();
  }
  if (name == kTargetAttrName) {
    if (!isa<ModuleOp>(op) || !isa<TargetAttr>(attr.getValue()))
      return op->emitError()
             << "'" << name << "' must be a #moe.target on a module";
    return success();
  }
  if (name == kInPlaceAttrName) {
    if (!isa<UnitAttr>(attr.getValue()))
      return op->emitError() << "'" << name << "' must be a unit attribute";
    // The emitter writes such results straight into their global's storage.
    if (inPlaceGlobals(op).empty())
      return op->emitError()
             << "'" << name
             << "' needs an in-place op each of whose results has one use, "
                "storing it to the global its in-place operand was loaded "
                "from";
    return success();
  }
  return op->emitError() << "unknown moe dialect attribute '" << name << "'";
}

/// A function's argument (`isResult` false) or result names it with a
/// string under `expectedName` (moe.input, moe.output), which tools bind it
/// by, so a name may appear once. The last named one checks them all, in one
/// pass: a train step has a result per parameter.
static LogicalResult verifyNameAttr(Operation *op, unsigned index,
                                    NamedAttribute attr, StringRef expectedName,
                                    bool isResult) {
  if (attr.getName() != expectedName)
    return op->emitError() << "unknown moe dialect attribute '"
                           << attr.getName().strref() << "' (expected '"
                           << expectedName << "')";
  if (!isa<StringAttr>(attr.getValue()))
    return op->emitError() << "'" << expectedName << "' must be a string";
  auto function = dyn_cast<FunctionOpInterface>(op);
  if (!function)
    return success();
  unsigned count =
      isResult ? function.getNumResults() : function.getNumArguments();
  auto nameAt = [&](unsigned i) {
    return isResult ? function.getResultAttr(i, expectedName)
                    : function.getArgAttr(i, expectedName);
  };
  for (unsigned later = index + 1; later < count; ++later)
    if (nameAt(later))
      return success();
  DenseMap<Attribute, unsigned> first;
  for (unsigned i = 0; i <= index; ++i)
    if (Attribute name = nameAt(i))
      if (auto [seen, added] = first.try_emplace(name, i); !added)
        return op->emitError() << (isResult ? "results #" : "arguments #")
                               << seen->second << " and #" << i << " share the "
                               << expectedName << " name " << name;
  return success();
}

LogicalResult MoeDialect::verifyRegionArgAttribute(Operation *op, unsigned,
                                                   unsigned argIndex,
                                                   NamedAttribute attr) {
  return verifyNameAttr(op, argIndex, attr, kInputAttrName, false);
}

LogicalResult MoeDialect::verifyRegionResultAttribute(Operation *op, unsigned,
                                                      unsigned resultIndex,
                                                      NamedAttribute attr) {
  return verifyNameAttr(op, resultIndex, attr, kOutputAttrName, true);
}

LogicalResult InitAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               InitKind kind, APFloat apValue) {
  double value = apValue.convertToDouble();
  if (!std::isfinite(value))
    return emitError() << "#moe.init value must be finite, got " << value;
  if (kind == InitKind::normal && value < 0)
    return emitError() << "#moe.init<normal> std must be >= 0, got " << value;
  return success();
}

LogicalResult
RopeScalingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        RopeKind kind, APFloat factor, APFloat lowFreqFactor,
                        APFloat highFreqFactor, APFloat originalPositions,
                        APFloat betaFast, APFloat betaSlow, bool truncate,
                        APFloat attentionFactor) {
  // The kernels read every parameter: one that the kind does not read must
  // keep its default (printed, it is left out).
  auto at = [](const APFloat &value, double fallback) {
    return value.convertToDouble() == fallback;
  };
  const char *unread = nullptr;
  if (kind != RopeKind::llama3 &&
      !(at(lowFreqFactor, 1.0) && at(highFreqFactor, 4.0)))
    unread = "low_freq_factor and high_freq_factor";
  else if (kind == RopeKind::linear && !at(originalPositions, 0.0))
    unread = "original_positions";
  else if (kind != RopeKind::yarn &&
           !(at(betaFast, 32.0) && at(betaSlow, 1.0) && truncate &&
             at(attentionFactor, 1.0)))
    unread = "beta_fast, beta_slow, truncate and attention_factor";
  if (unread)
    return emitError() << "#moe.rope_scaling<" << stringifyRopeKind(kind)
                       << "> does not read " << unread
                       << ": leave them at their defaults";
  // transformers refuses the same (rope_config_validation).
  auto require = [&](bool holds, StringRef what,
                     APFloat value) -> LogicalResult {
    if (holds)
      return success();
    return emitError() << "#moe.rope_scaling<" << stringifyRopeKind(kind)
                       << "> needs " << what << ", got "
                       << value.convertToDouble();
  };
  double positions = originalPositions.convertToDouble();
  if (failed(require(factor.convertToDouble() >= 1 &&
                         std::isfinite(factor.convertToDouble()),
                     "a finite factor >= 1", factor)) ||
      failed(require(attentionFactor.convertToDouble() > 0 &&
                         std::isfinite(attentionFactor.convertToDouble()),
                     "a finite attention_factor > 0", attentionFactor)))
    return failure();
  if (kind == RopeKind::linear)
    return success();
  if (failed(require(positions > 0 && std::isfinite(positions),
                     "original_positions > 0", originalPositions)))
    return failure();
  // Two bounds in order: low and high frequency factors, or YaRN's slow and
  // fast rotation counts.
  bool llama3 = kind == RopeKind::llama3;
  double low = (llama3 ? lowFreqFactor : betaSlow).convertToDouble();
  double high = (llama3 ? highFreqFactor : betaFast).convertToDouble();
  if (low > 0 && high > low && std::isfinite(high))
    return success();
  return emitError() << "#moe.rope_scaling<" << stringifyRopeKind(kind)
                     << "> needs 0 < "
                     << (llama3 ? "low_freq_factor < high_freq_factor"
                                : "beta_slow < beta_fast")
                     << ", got " << low << " and " << high;
}

LogicalResult TargetAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 StringRef name, int64_t alignment) {
  auto known = llvm::find_if(knownTargets(), [&](const TargetFacts &facts) {
    return facts.name == name;
  });
  if (known == knownTargets().end()) {
    InFlightDiagnostic diagnostic = emitError() << "unknown target '" << name
                                                << "' (known: ";
    llvm::interleaveComma(
        knownTargets(), diagnostic,
        [&](const TargetFacts &facts) { diagnostic << facts.name; });
    return diagnostic << ")";
  }
  if (alignment < known->minAlignment || !llvm::isPowerOf2_64(alignment))
    return emitError() << "target '" << name
                       << "' needs an alignment that is a power of two and "
                          "at least "
                       << known->minAlignment << ", got " << alignment;
  // Beyond a huge page no buffer gains, and the plan's offsets could overflow.
  constexpr int64_t kMaxAlignment = int64_t(1) << 21;
  if (alignment > kMaxAlignment)
    return emitError() << "target '" << name << "' alignment " << alignment
                       << " exceeds " << kMaxAlignment
                       << " bytes (2 MiB, a huge page)";
  return success();
}

ArrayRef<TargetFacts> mlir::moe::knownTargets() {
  // cuda: 256 bytes, cudaMalloc's alignment, which vectorized loads and
  // cuBLAS's fastest paths expect of every buffer.
  static constexpr TargetFacts targets[] = {{"cpu", 64}, {"cuda", 256}};
  return targets;
}

TargetAttr mlir::moe::getDefaultTarget(MLIRContext *context, StringRef name) {
  // A module without moe ops (an empty one) has not loaded the dialect.
  context->getOrLoadDialect<MoeDialect>();
  for (const TargetFacts &facts : knownTargets())
    if (facts.name == name)
      return TargetAttr::get(context, name, facts.minAlignment);
  return nullptr;
}

TargetAttr mlir::moe::getModuleTarget(Operation *module) {
  if (auto target = module->getAttrOfType<TargetAttr>(kTargetAttrName))
    return target;
  return getDefaultTarget(module->getContext(), "cpu");
}

std::optional<int64_t> mlir::moe::getLayer(Operation *op) {
  if (auto layer = op->getAttrOfType<IntegerAttr>(kLayerAttrName))
    return layer.getInt();
  return std::nullopt;
}

void mlir::moe::copyOrigin(Operation *from, Operation *to) {
  for (StringRef name : {kLayerAttrName, kRecomputedAttrName})
    if (Attribute attribute = from->getAttr(name))
      to->setAttr(name, attribute);
}

int64_t mlir::moe::rowsOf(Value value) {
  return ShapedType::getNumElements(
      cast<ShapedType>(value.getType()).getShape().drop_back());
}

Type mlir::moe::gemmResultType(Type operandType) {
  if (!getElementTypeOrSelf(operandType).isBF16())
    return operandType;
  Type f32 = Float32Type::get(operandType.getContext());
  if (auto tensor = dyn_cast<RankedTensorType>(operandType))
    return tensor.clone(f32);
  return f32;
}

Type mlir::moe::attentionLseType(Type queryType) {
  auto query = dyn_cast<RankedTensorType>(queryType);
  if (!query || query.getRank() != 4)
    return {};
  ArrayRef<int64_t> shape = query.getShape(); // [batch, seq, heads, head_dim]
  return RankedTensorType::get({shape[0], shape[2], shape[1]},
                               gemmResultType(query.getElementType()));
}

bool mlir::moe::computesInF32(Operation *op) {
  auto widening = dyn_cast<WidenableOperandOpInterface>(op);
  return llvm::all_of(op->getOpOperands(), [&](OpOperand &operand) {
    Type element = getElementTypeOrSelf(operand.get().getType());
    return !isa<FloatType>(element) || element.isF32() ||
           (element.isBF16() && widening &&
            widening.isWidenableOperand(operand.getOperandNumber()));
  });
}

LogicalResult mlir::moe::checkPrecisionConversion(Operation *op) {
  auto elementOf = [](Value value) {
    return getElementTypeOrSelf(value.getType());
  };
  if (auto truncate = dyn_cast<arith::TruncFOp>(op)) {
    std::optional<arith::RoundingMode> mode = truncate.getRoundingmode();
    if (elementOf(truncate.getIn()).isF32() &&
        elementOf(truncate.getOut()).isBF16() &&
        (!mode || *mode == arith::RoundingMode::to_nearest_even))
      return success();
  } else if (auto extend = dyn_cast<arith::ExtFOp>(op)) {
    if (elementOf(extend.getIn()).isBF16() &&
        elementOf(extend.getOut()).isF32())
      return success();
  }
  return op->emitOpError()
         << "converts f32 tensors to bf16 (rounding to nearest even) and bf16 "
            "tensors to f32 only, got "
         << op->getOperand(0).getType() << " to " << op->getResult(0).getType()
         << (isa<arith::TruncFOp>(op) ? " (with its rounding mode)" : "");
}

// The dialect's kinds carry the runtime's values (Default is 0, no kind).
static_assert(static_cast<int>(RopeKind::linear) ==
                  static_cast<int>(moert::RopeKind::Linear) &&
              static_cast<int>(RopeKind::llama3) ==
                  static_cast<int>(moert::RopeKind::Llama3) &&
              static_cast<int>(RopeKind::yarn) ==
                  static_cast<int>(moert::RopeKind::Yarn));

static_assert(static_cast<int>(GateScoring::softmax) ==
                  static_cast<int>(moert::GateScoring::Softmax) &&
              static_cast<int>(GateScoring::sigmoid) ==
                  static_cast<int>(moert::GateScoring::Sigmoid));

moert::GateScoring mlir::moe::runtimeGateScoring(GateScoring scoring) {
  return static_cast<moert::GateScoring>(scoring);
}

moert::RopeScaling mlir::moe::ropeScalingOf(RopeScalingAttr scaling) {
  if (!scaling)
    return {};
  return {static_cast<moert::RopeKind>(scaling.getKind()),
          scaling.getFactor().convertToDouble(),
          scaling.getLowFreqFactor().convertToDouble(),
          scaling.getHighFreqFactor().convertToDouble(),
          scaling.getOriginalPositions().convertToDouble(),
          scaling.getBetaFast().convertToDouble(),
          scaling.getBetaSlow().convertToDouble(),
          scaling.getTruncate(),
          scaling.getAttentionFactor().convertToDouble()};
}

RopeScalingAttr mlir::moe::ropeScalingAttr(MLIRContext *context,
                                           const moert::RopeScaling &scaling) {
  return RopeScalingAttr::get(
      context, static_cast<RopeKind>(scaling.kind), APFloat(scaling.factor),
      APFloat(scaling.lowFreqFactor), APFloat(scaling.highFreqFactor),
      APFloat(scaling.originalPositions), APFloat(scaling.betaFast),
      APFloat(scaling.betaSlow), scaling.truncate,
      APFloat(scaling.attentionFactor));
}

Value mlir::moe::beforeBf16Copy(Value value) {
  if (auto copy = value.getDefiningOp<arith::TruncFOp>())
    return copy.getIn();
  return value;
}

LogicalResult mlir::moe::requireOneBlockBody(FunctionOpInterface function,
                                             StringRef prefix,
                                             StringRef purpose) {
  if (function.isExternal())
    return function.emitError()
           << prefix << "the function is a declaration, with no body to "
           << purpose;
  if (!function.getFunctionBody().hasOneBlock())
    return function.emitError()
           << prefix << "the function must have one block to " << purpose;
  return success();
}

void mlir::moe::setOutputNames(FunctionOpInterface function,
                               ArrayRef<std::string> names) {
  Builder b(function.getContext());
  function.setAllResultAttrs(
      llvm::map_to_vector(names, [&](const std::string &name) -> Attribute {
        return b.getDictionaryAttr(
            b.getNamedAttr(kOutputAttrName, b.getStringAttr(name)));
      }));
}

bool mlir::moe::isFiniteIn(double value, Type type) {
  auto element = dyn_cast<FloatType>(getElementTypeOrSelf(type));
  if (!element)
    return true;
  APFloat rounded(value);
  bool lost;
  rounded.convert(element.getFloatSemantics(), APFloat::rmNearestTiesToEven,
                  &lost);
  return rounded.isFinite();
}

int64_t mlir::moe::byteSize(Type tensorType) {
  auto tensor = cast<RankedTensorType>(tensorType);
  return tensor.getNumElements() *
         std::max<int64_t>(1, tensor.getElementTypeBitWidth() / 8);
}

LogicalResult mlir::moe::verifyTensorSizes(Operation *root) {
  auto tooLarge = [](Type type) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape())
      return false;
    std::optional<int64_t> elements =
        detail::staticElementCount(tensor.getShape());
    int64_t width = std::max<int64_t>(1, tensor.getElementTypeBitWidth() / 8);
    return !elements || *elements > kMaxTensorBytes / width;
  };
  WalkResult walk = root->walk([&](Operation *op) {
    SmallVector<Type> types(op->getResultTypes());
    if (auto global = dyn_cast<ml_program::GlobalOp>(op))
      types.push_back(global.getType());
    for (Region &region : op->getRegions())
      for (Block &block : region)
        llvm::append_range(types, block.getArgumentTypes());
    for (Type type : types)
      if (tooLarge(type)) {
        op->emitError() << type
                        << " holds more than 2^48 bytes (256 TiB), the most "
                           "a tensor may";
        return WalkResult::interrupt();
      }
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

SmallVector<int16_t> mlir::moe::batchGridAxes(ArrayRef<int64_t> gridShape) {
  return llvm::to_vector(
      llvm::seq<int16_t>(0, static_cast<int16_t>(gridShape.size())));
}

int16_t mlir::moe::expertGridAxis(ArrayRef<int64_t> gridShape) {
  return static_cast<int16_t>(gridShape.size()) - 1;
}

SmallVector<int16_t> mlir::moe::replicaGridAxes(ArrayRef<int64_t> gridShape) {
  return llvm::to_vector(llvm::seq<int16_t>(0, expertGridAxis(gridShape)));
}

SmallVector<int16_t> mlir::moe::parameterCopyAxes(ArrayRef<int64_t> gridShape,
                                                  bool sharded) {
  return sharded ? replicaGridAxes(gridShape) : batchGridAxes(gridShape);
}

double mlir::moe::largestNormalizedLogit(double lambda, int64_t numExperts) {
  return lambda * std::sqrt(static_cast<double>(numExperts - 1));
}

int64_t mlir::moe::expertCapacity(double capacityFactor, int64_t tokens,
                                  int64_t topK, int64_t numExperts) {
  // The assignments in a double: an int64 product could wrap.
  double assignments = static_cast<double>(tokens) * static_cast<double>(topK);
  double exact = capacityFactor * assignments / static_cast<double>(numExperts);
  // Forgive only the rounding error of the product (a few ulps), so that
  // 1.1 * 100 is 110 while 1000.0000005 still rounds up.
  double nearest = std::round(exact);
  if (std::abs(exact - nearest) <=
      4 * std::numeric_limits<double>::epsilon() * exact)
    return static_cast<int64_t>(nearest);
  return static_cast<int64_t>(std::ceil(exact));
}
