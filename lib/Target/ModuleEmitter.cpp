//===- ModuleEmitter.cpp - planned moe IR to source against the model ABI -===//
//
// Each function becomes a straight-line sequence of kernel calls on pointers
// into the state region (globals), the arena (planned values) and the
// caller's inputs; views are pointer aliases and constants are static
// arrays. Nothing is allocated at run time.
//
//===----------------------------------------------------------------------===//

#include "ModuleEmitter.h"
#include "moe/Frontend/ModelConfig.h"
#include "moert/GridGroups.h"
#include "moert/ModelAbi.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cctype>
#include <cstdint>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::target;
using llvm::formatv;

namespace {

FailureOr<StringRef> cType(Operation *op, Type type) {
  Type element = getElementTypeOrSelf(type);
  if (element.isF32())
    return StringRef("float");
  if (element.isBF16())
    return StringRef("moert::bf16");
  if (element.isSignlessInteger(32))
    return StringRef("int32_t");
  if (element.isSignlessInteger(64))
    return StringRef("int64_t");
  return op->emitError() << "code generation supports f32, bf16, i32 and "
                            "i64 tensors, got "
                         << type;
}

/// What crosses the model ABI (globals, a function's inputs and outputs):
/// its dtypes have no bf16, which only intermediate values use.
LogicalResult checkAbiType(Operation *op, Type type, StringRef what) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return op->emitError() << what
                           << " must be a tensor of static shape (the model "
                              "ABI describes each by its shape), got "
                           << type;
  if (failed(cType(op, type)))
    return failure();
  if (getElementTypeOrSelf(type).isBF16())
    return op->emitError() << what
                           << " must be f32, i32 or i64 (the model ABI's "
                              "types; bf16 values stay inside a function), got "
                           << type;
  return success();
}

int abiDType(Type type) {
  Type element = getElementTypeOrSelf(type);
  if (element.isF32())
    return 0;
  if (element.isF64())
    return 1;
  return element.isSignlessInteger(32) ? 2 : 3;
}

std::string cString(StringRef text) {
  std::string quoted = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\')
      quoted += {'\\', c};
    else if (byte < 0x20 || byte == 0x7f)
      // Three octal digits: a digit after it cannot extend the escape.
      quoted += {'\\', char('0' + (byte >> 6)), char('0' + ((byte >> 3) & 7)),
                 char('0' + (byte & 7))};
    else
      quoted += c;
  }
  return quoted + "\"";
}

/// The statements computing element `index` of fused op `op`'s result.
std::string fusedBody(FusedElementwiseOp op, StringRef index,
                      ArrayRef<std::string> inputs, StringRef output) {
  std::string text;
  llvm::raw_string_ostream os(text);
  Block &body = op.getBody().front();
  DenseMap<Value, std::string> scalars;
  int counter = 0;
  auto fresh = [&] { return formatv("e{0}", counter++).str(); };
  for (auto [input, argument] : llvm::zip(inputs, body.getArguments())) {
    // An input that only gives the shape (a fill) is not read.
    if (argument.use_empty())
      continue;
    std::string name = fresh();
    os << "    float " << name << " = " << input << "[" << index << "];\n";
    scalars[argument] = name;
  }
  for (Operation &inner : body) {
    auto in = [&](unsigned i) { return scalars.lookup(inner.getOperand(i)); };
    if (isa<YieldOp>(inner)) {
      os << "    " << output << "[" << index << "] = " << in(0) << ";\n";
      break;
    }
    std::string expression =
        llvm::TypeSwitch<Operation *, std::string>(&inner)
            .Case([&](arith::AddFOp) { return in(0) + " + " + in(1); })
            .Case([&](arith::SubFOp) { return in(0) + " - " + in(1); })
            .Case([&](arith::MulFOp) { return in(0) + " * " + in(1); })
            .Case([&](arith::DivFOp) { return in(0) + " / " + in(1); })
            .Case([&](arith::NegFOp) { return "-" + in(0); })
            .Case([&](math::ExpOp) { return "std::exp(" + in(0) + ")"; })
            .Case([&](arith::ConstantOp c) {
              return "float(" +
                     literal(cast<FloatAttr>(c.getValue()).getValueAsDouble()) +
                     ")";
            })
            .Default([](Operation *) -> std::string {
              llvm_unreachable("FusedElementwiseOp::verify allows no other "
                               "body op");
            });
    std::string name = fresh();
    os << "    float " << name << " = " << expression << ";\n";
    scalars[inner.getResult(0)] = name;
  }
  return text;
}

/// What a profile names an op's place in the model by: its location's
/// names (the model's module paths), or file and line.
std::string locationLabel(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return name.getName().str();
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    return formatv("{0}:{1}", file.getFilename(), file.getLine()).str();
  if (auto fused = dyn_cast<FusedLoc>(loc)) {
    SmallVector<std::string> labels;
    for (Location part : fused.getLocations()) {
      std::string label = locationLabel(part);
      if (!label.empty() && !llvm::is_contained(labels, label))
        labels.push_back(label);
    }
    return llvm::join(labels, "+");
  }
  return "";
}

} // namespace

LogicalResult ModuleEmitter::openKernelScope(Operation *op, StringRef kernel,
                                             std::optional<OpCost> cost) {
  if (!cost) {
    FailureOr<OpCost> priced = getOpCost(op, *queueFill);
    if (failed(priced))
      return failure();
    cost = *priced;
  }
  if (isModelFlops(*cost) && !isRecomputed(op))
    modelFlops += cost->flops;
  if (!options.profile)
    return success();
  out << "  {\n  " << target.profileScope() << " profile(" << profileSites
      << "[" << profileSiteEntries.size() << "]);\n";
  profileSiteEntries.push_back(
      formatv("{{{0}, {1}, {2}, {3}, 0, 0}", cString(kernel),
              cString(locationLabel(op->getLoc())), literal(cost->flops),
              literal(cost->bytes))
          .str());
  return success();
}

void ModuleEmitter::closeKernelScope() {
  if (options.profile)
    out << "  }\n";
}

void ModuleEmitter::emitCopy(Operation *op, StringRef destination,
                             StringRef source, int64_t bytes) {
  OpCost cost;
  cost.kind = OpCost::Kind::Memory;
  cost.bytes = 2.0 * static_cast<double>(bytes);
  // A copy's op is known, so pricing it cannot fail.
  (void)openKernelScope(op, "copy", cost);
  target.emitCopy(out, destination, source, bytes);
  closeKernelScope();
}

std::string ModuleEmitter::shapeArray(ArrayRef<int64_t> shape) {
  std::string name = fresh("shape");
  staticsOs << "const int64_t " << name << "[] = {";
  llvm::interleaveComma(shape, staticsOs);
  if (shape.empty())
    staticsOs << "0";
  staticsOs << "};\n";
  return name;
}

std::string ModuleEmitter::trainingSettings() {
  auto recorded = module->getAttrOfType<DictionaryAttr>(kTrainingAttrName);
  if (!recorded)
    return "";
  SmallVector<std::string> words;
  for (NamedAttribute entry : recorded) {
    SmallVector<StringRef> pairs;
    cast<StringAttr>(entry.getValue())
        .getValue()
        .split(pairs, ' ', -1, /*KeepEmpty=*/false);
    for (StringRef pair : pairs)
      words.push_back((entry.getName().getValue() + "." + pair).str());
  }
  return llvm::join(words, " ");
}

std::string ModuleEmitter::descriptor(StringRef name, Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return formatv("{{{0}, {1}, {2}, {3}}", cString(name), abiDType(type),
                 tensor.getRank(), shapeArray(tensor.getShape()))
      .str();
}

std::string ModuleEmitter::rowCounts(Value buffer) {
  auto it = dispatchCounts.find(buffer);
  if (it != dispatchCounts.end())
    return it->second;
  // Not from a dispatch: every row of the buffer is a real row.
  ArrayRef<int64_t> shape = shapeOf(buffer);
  std::string name = fresh("full_counts");
  target.emitRowCounts(out, name, shape[0], shape[1]);
  dispatchCounts[buffer] = name;
  return name;
}

std::string ModuleEmitter::argument(const KernelArg &arg) {
  auto arrayOf = [&](StringRef prefix, StringRef type, auto element) {
    std::string name = fresh(prefix);
    SmallVector<std::string> elements =
        llvm::map_to_vector(arg.values, element);
    // A host array on every target: the kernels read (or, on a device,
    // copy into their launches' parameters) the pointers and sizes.
    out << "  " << type << " " << name << "[] = {" << llvm::join(elements, ", ")
        << "};\n";
    return name;
  };
  switch (arg.kind) {
  case KernelArg::Kind::Buffer:
    return p(arg.value);
  case KernelArg::Kind::Scalar:
    return target.scalarArgument(p(arg.value));
  case KernelArg::Kind::Literal:
    return arg.text;
  case KernelArg::Kind::RowCounts:
    return rowCounts(arg.value);
  case KernelArg::Kind::NewRowCounts: {
    std::string name = fresh("counts");
    target.emitRowCounts(out, name, shapeOf(arg.value)[0], std::nullopt);
    dispatchCounts[arg.value] = name;
    return name;
  }
  case KernelArg::Kind::BufferList:
  case KernelArg::Kind::OutputBufferList: {
    // Every value has a declared pointer by now, so its type is supported.
    Value first = arg.values.front();
    std::string type =
        (arg.kind == KernelArg::Kind::BufferList ? "const " : "") +
        cType(first.getParentBlock()->getParentOp(), first.getType())->str() +
        " *";
    return arrayOf("tensors", type, [&](Value v) { return p(v); });
  }
  case KernelArg::Kind::SizeList:
    return arrayOf("sizes", "const int64_t",
                   [](Value v) { return std::to_string(numElements(v)); });
  }
  llvm_unreachable("unknown kernel argument kind");
}

void ModuleEmitter::emitFusedElementwise(FusedElementwiseOp op) {
  SmallVector<std::string> inputs =
      llvm::map_to_vector(op.getInputs(), [&](Value v) { return p(v); });
  target.emitElementwiseLoop(
      out, staticsOs, numElements(op.getResult()), inputs, p(op.getResult()),
      [&](StringRef index, ArrayRef<std::string> inputNames,
          StringRef outputName) {
        return fusedBody(op, index, inputNames, outputName);
      },
      op->hasAttr(kInPlaceAttrName));
}

LogicalResult ModuleEmitter::declareResults(Operation *op) {
  auto offsets = op->getAttrOfType<DenseI64ArrayAttr>(kArenaOffsetsAttrName);
  bool inPlace = op->hasAttr(kInPlaceAttrName);
  if (!offsets && !inPlace)
    return op->emitError("no memory plan: run moe-plan-memory first");
  if (!inPlace) {
    // Hand-edited or corrupt plans must not become out-of-bounds writes.
    auto function = op->getParentOfType<func::FuncOp>();
    auto arenaBytes =
        function ? function->getAttrOfType<IntegerAttr>(kArenaBytesAttrName)
                 : IntegerAttr();
    if (!arenaBytes)
      return op->emitError("no arena size on the enclosing function: run "
                           "moe-plan-memory first");
    if (offsets.size() != static_cast<int64_t>(op->getNumResults()))
      return op->emitError()
             << "'" << kArenaOffsetsAttrName << "' has " << offsets.size()
             << " offsets for " << op->getNumResults() << " results";
    // The plan aligns every buffer to the target (CUDA's vector loads and
    // cuBLAS's fast paths need it).
    int64_t alignment =
        getModuleTarget(op->getParentOfType<ModuleOp>()).getAlignment();
    for (OpResult result : op->getResults()) {
      int64_t offset = offsets[result.getResultNumber()];
      int64_t bytes = byteSize(result.getType());
      if (offset < 0 || offset > arenaBytes.getInt() - bytes)
        return op->emitError() << "result #" << result.getResultNumber() << " ("
                               << bytes << " bytes) at arena offset " << offset
                               << " lies outside the arena of "
                               << arenaBytes.getInt() << " bytes";
      if (offset % alignment != 0)
        return op->emitError()
               << "result #" << result.getResultNumber() << " at arena offset "
               << offset << " is not aligned to the target's " << alignment
               << " bytes";
    }
  }
  for (OpResult result : op->getResults()) {
    FailureOr<StringRef> type = cType(op, result.getType());
    if (failed(type))
      return failure();
    std::string name = fresh("v");
    std::string address;
    if (inPlace) {
      auto store = cast<ml_program::GlobalStoreOp>(*result.user_begin());
      address =
          formatv("state + {0}",
                  globalOffsets.lookup(store.getGlobal().getLeafReference()))
              .str();
    } else {
      address = formatv("arena + {0}", offsets[result.getResultNumber()]);
    }
    out << "  " << *type << " *" << name << " = reinterpret_cast<" << *type
        << " *>(" << address << ");\n";
    names[result] = name;
  }
  return success();
}

/// The C++ initializer of one element of a constant of `type`: a bf16 by
/// its bits (its storage type takes no number), a float as a literal.
static std::string constantElement(Type type, const APFloat &value) {
  if (type.isBF16())
    return formatv("moert::bf16{{{0:x}}", value.bitcastToAPInt().getZExtValue())
        .str();
  return "float(" + literal(value.convertToDouble()) + ")";
}

LogicalResult ModuleEmitter::emitConstant(arith::ConstantOp op) {
  auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
  FailureOr<StringRef> type = cType(op, op.getType());
  if (!dense || failed(type))
    return op.emitError("code generation supports dense tensor constants");
  Type elementType = dense.getElementType();
  auto element = [&](Attribute value) {
    if (auto number = dyn_cast<FloatAttr>(value))
      return constantElement(elementType, number.getValue());
    int64_t number = cast<IntegerAttr>(value).getValue().getSExtValue();
    // -2^63 has no literal: 9223372036854775808 does not fit an int64_t.
    return number == INT64_MIN ? std::string("INT64_MIN")
                               : std::to_string(number);
  };
  std::string name = fresh("constant");
  int64_t count = dense.getNumElements();
  staticsOs << *type << " " << name << "[" << count << "] = {";
  if (dense.isSplat()) {
    // Static zero-initialization covers the common all-zero splat (zero
    // bits for every type); other splats are filled once at load time.
    auto splat = dense.getSplatValue<Attribute>();
    staticsOs << "};\n";
    if (!matchPattern(splat, m_PosZeroFloat()) &&
        !matchPattern(splat, m_Zero()))
      staticsOs << "const bool " << name << "_filled = (std::fill_n(" << name
                << ", " << count << ", " << *type << "(" << element(splat)
                << ")), true);\n";
  } else {
    llvm::interleaveComma(
        dense.getValues<Attribute>(), staticsOs,
        [&](Attribute value) { staticsOs << element(value); });
    staticsOs << "};\n";
  }
  names[op.getResult()] = target.constantBuffer(out, name, *type, count);
  return success();
}

LogicalResult ModuleEmitter::emitOp(Operation *op) {
  if (Value source = viewSource(op)) {
    names[op->getResult(0)] = p(source);
    return success();
  }
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ml_program::GlobalLoadOp load) -> LogicalResult {
        std::string stateAddress =
            formatv("state + {0}",
                    globalOffsets.lookup(load.getGlobal().getLeafReference()));
        // The planner gives a load an arena buffer when a store to its
        // global comes before its last read.
        auto offsets =
            load->getAttrOfType<DenseI64ArrayAttr>(kArenaOffsetsAttrName);
        if (offsets && offsets[0] >= 0) {
          if (failed(declareResults(load)))
            return failure();
          emitCopy(load, p(load.getResult()), stateAddress,
                   byteSize(load.getType()));
          return success();
        }
        FailureOr<StringRef> type = cType(op, load.getType());
        if (failed(type))
          return failure();
        std::string name = fresh("v");
        out << "  " << *type << " *" << name << " = reinterpret_cast<" << *type
            << " *>(" << stateAddress << ");\n";
        names[load.getResult()] = name;
        return success();
      })
      .Case([&](ml_program::GlobalStoreOp store) {
        Operation *producer = store.getValue().getDefiningOp();
        if (!producer || !producer->hasAttr(kInPlaceAttrName))
          emitCopy(
              store,
              formatv("state + {0}", globalOffsets.lookup(
                                         store.getGlobal().getLeafReference()))
                  .str(),
              p(store.getValue()), byteSize(store.getValue().getType()));
        return success();
      })
      .Case([&](arith::ConstantOp constant) { return emitConstant(constant); })
      // A leading run is a view (above); no other slice has a kernel.
      .Case(
          [&](tensor::ExtractSliceOp slice) { return checkLeadingRun(slice); })
      .Case([&](tensor::PadOp pad) -> LogicalResult {
        if (failed(checkZerosAfter(pad)) || failed(declareResults(pad)) ||
            failed(openKernelScope(pad, "pad")))
          return failure();
        int64_t sourceBytes = byteSize(pad.getSourceType());
        target.emitCopy(out, p(pad.getResult()), p(pad.getSource()),
                        sourceBytes);
        target.emitZero(out,
                        formatv("reinterpret_cast<char *>({0}) + {1}",
                                p(pad.getResult()), sourceBytes)
                            .str(),
                        byteSize(pad.getResultType()) - sourceBytes);
        closeKernelScope();
        return success();
      })
      .Case([&](FusedElementwiseOp fused) -> LogicalResult {
        if (failed(declareResults(fused)) ||
            failed(openKernelScope(fused, "fused loop")))
          return failure();
        emitFusedElementwise(fused);
        closeKernelScope();
        return success();
      })
      .Case<arith::TruncFOp, arith::ExtFOp>([&](Operation *convert) {
        if (failed(checkPrecisionConversion(convert)) ||
            failed(emitKernelCall(convert)))
          return failure();
        // A converted expert buffer has the rows of the buffer it converts.
        auto counts = dispatchCounts.find(convert->getOperand(0));
        if (counts != dispatchCounts.end())
          dispatchCounts[convert->getResult(0)] = counts->second;
        return success();
      })
      .Default([&](Operation *other) { return emitKernelCall(other); });
}

LogicalResult ModuleEmitter::emitFunction(func::FuncOp function) {
  // A plan may be written by hand: what moe-plan-memory checks, again.
  if (failed(requireOneBlockBody(function, "", "emit")))
    return failure();
  names.clear();
  dispatchCounts.clear();
  // Symbol names may hold characters C++ identifiers cannot.
  std::string cName = "function_";
  for (char c : function.getSymName())
    cName += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  // A renamed one is taken too: "a.b" and "a-b" before "a_b_5".
  while (!functionNames.insert(cName).second)
    cName = fresh(cName + "_");
  for (Type type : function.getResultTypes())
    if (failed(checkAbiType(function, type, "a function result")))
      return failure();
  profileSiteEntries.clear();
  if (options.profile)
    profileSites = fresh("profile_sites");
  queueFill.emplace(function.getBody().front());
  modelFlops = 0;
  target.emitFunctionBegin(out, cName, function.getNumArguments(),
                           function.getNumResults());
  for (BlockArgument argument : function.getArguments()) {
    if (failed(
            checkAbiType(function, argument.getType(), "a function argument")))
      return failure();
    FailureOr<StringRef> type = cType(function, argument.getType());
    std::string name = fresh("v");
    out << "  " << *type << " *" << name << " = const_cast<" << *type
        << " *>(static_cast<const " << *type << " *>(inputs["
        << argument.getArgNumber() << "]));\n";
    names[argument] = name;
  }
  for (Operation &op : function.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [index, value] : llvm::enumerate(ret.getOperands()))
        emitCopy(ret, formatv("outputs[{0}]", index).str(), p(value),
                 byteSize(value.getType()));
      continue;
    }
    if (failed(emitOp(&op)))
      return failure();
  }
  target.emitFunctionEnd(out);

  // The descriptors of the function's interface.
  auto describe = [&](StringRef kind, unsigned count, auto nameOf,
                      auto typeOf) {
    // Descriptors first: they declare their shape arrays.
    SmallVector<std::string> entries;
    for (unsigned i = 0; i < count; ++i)
      entries.push_back(descriptor(nameOf(i), typeOf(i)));
    if (count == 0)
      entries.push_back("{nullptr, 0, 0, nullptr}");
    std::string array = fresh(kind);
    staticsOs << "const moe_tensor_desc " << array << "[] = {"
              << llvm::join(entries, ", ") << "};\n";
    return array;
  };
  std::string inputs = describe(
      "inputs", function.getNumArguments(),
      [&](unsigned i) {
        auto name = function.getArgAttrOfType<StringAttr>(i, kInputAttrName);
        return name ? name.str() : formatv("arg{0}", i).str();
      },
      [&](unsigned i) { return function.getArgumentTypes()[i]; });
  std::string outputs = describe(
      "outputs", function.getNumResults(),
      [&](unsigned i) {
        auto name =
            function.getResultAttrOfType<StringAttr>(i, kOutputAttrName);
        return name ? name.str() : formatv("result{0}", i).str();
      },
      [&](unsigned i) { return function.getResultTypes()[i]; });
  auto arenaBytes = function->getAttrOfType<IntegerAttr>(kArenaBytesAttrName);
  if (!arenaBytes)
    return function.emitError("no memory plan: run moe-plan-memory first");
  std::string sites = "0, nullptr";
  if (!profileSiteEntries.empty()) {
    staticsOs << "moe_profile_site " << profileSites << "[] = {\n    "
              << llvm::join(profileSiteEntries, ",\n    ") << "};\n";
    sites = formatv("{0}, {1}", profileSiteEntries.size(), profileSites);
  }
  functionEntries.push_back(
      formatv("{{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}",
              cString(function.getSymName()), function.getNumArguments(),
              inputs, function.getNumResults(), outputs, arenaBytes.getInt(),
              literal(modelFlops), cName, sites)
          .str());
  return success();
}

LogicalResult ModuleEmitter::emitKernelCall(Operation *op) {
  if (failed(target.checkKernelLimits(op)))
    return failure();
  FailureOr<KernelCall> call = describeKernelCall(op);
  if (failed(call))
    return op->emitError() << "no kernel computes '" << op->getName()
                           << "' on target '" << target.targetName() << "'";
  if (failed(declareResults(op)))
    return failure();
  SmallVector<std::string> args = llvm::map_to_vector(
      call->args, [&](const KernelArg &arg) { return argument(arg); });
  if (failed(openKernelScope(op, call->kernel)))
    return failure();
  target.emitCall(out, call->kernel, args,
                  call->scalarResult ? p(call->scalarResult) : "");
  closeKernelScope();
  return success();
}

LogicalResult ModuleEmitter::emit() {
  TargetAttr moduleTarget = getModuleTarget(module);
  if (moduleTarget.getName() != target.targetName())
    return module.emitError()
           << "the module is for target '" << moduleTarget.getName() << "'"
           << (module->hasAttr(kTargetAttrName)
                   ? ""
                   : " (it names none: the default; moe-attach-target "
                     "names one)")
           << ", not '" << target.targetName() << "'";
  int64_t alignment = moduleTarget.getAlignment();
  // An SPMD program runs as one process per rank of its grid, the layout of
  // moe-expert-parallel: [ranks] or [replicas, expert ranks].
  int64_t ranks = 1, expertRanks = 1;
  for (auto grid : module.getOps<shard::GridOp>()) {
    ArrayRef<int64_t> shape = grid.getShape();
    bool layout =
        ranks == 1 && !shape.empty() && shape.size() <= 2 &&
        llvm::all_of(shape, [](int64_t extent) { return extent > 0; });
    if (layout) {
      ranks = ShapedType::getNumElements(shape);
      expertRanks = shape.back();
      layout = shape == ArrayRef(moert::modelGridShape(ranks, expertRanks));
    }
    if (!layout)
      return grid.emitError("code generation supports one grid of a static "
                            "shape [ranks] or [replicas, expert ranks] "
                            "(moe-expert-parallel's layouts)");
  }
  auto microBatches = module->getAttrOfType<IntegerAttr>(kMicroBatchesAttrName);
  int64_t microBatchCount = microBatches ? microBatches.getInt() : 1;
  // The state region: every global, aligned, in declaration order.
  int64_t stateBytes = 0;
  std::string globals;
  llvm::raw_string_ostream globalsOs(globals);
  llvm::StringMap<int64_t> globalIndex;
  for (auto [index, global] :
       llvm::enumerate(module.getOps<ml_program::GlobalOp>()))
    globalIndex[global.getSymName()] = index;
  std::vector<int64_t> gridShape = moert::modelGridShape(ranks, expertRanks);
  llvm::DenseSet<StringAttr> configConstants = configConstantGlobals(module);
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    // The distributed optimizer's part of a parameter's state.
    int64_t partAxes = 0, partOf = 0;
    if (auto of =
            global->getAttrOfType<FlatSymbolRefAttr>(kOptimizerPartAttrName)) {
      auto parameter = module.lookupSymbol<ml_program::GlobalOp>(of.getAttr());
      if (parameter && ranks > 1)
        for (int16_t axis :
             parameterCopyAxes(gridShape, parameter->hasAttr(kShardedAttrName)))
          partAxes |= int64_t(1) << axis;
      if (partAxes == 0)
        return global.emitError()
               << "'" << kOptimizerPartAttrName << "' needs a global " << of
               << " with copies on the grid's ranks";
      partOf = globalIndex.lookup(parameter.getSymName());
    }
    if (failed(checkAbiType(global, global.getType(), "a global")))
      return failure();
    auto init = global->getAttrOfType<InitAttr>(kInitAttrName);
    if (!init)
      return global.emitError() << "code generation needs a '" << kInitAttrName
                                << "' initializer on every global";
    auto upcycle = global->getAttrOfType<StringAttr>(kUpcycleAttrName);
    int64_t bytes = byteSize(global.getType());
    globalOffsets[global.getSymName()] = stateBytes;
    globalsOs << "    {" << descriptor(global.getSymName(), global.getType())
              << ", " << stateBytes << ", " << bytes << ", "
              << (global->hasAttr(kTrainableAttrName) ? 1 : 0) << ", "
              << (init.getKind() == InitKind::normal ? "MOE_INIT_NORMAL"
                                                     : "MOE_INIT_CONSTANT")
              << ", " << literal(init.getValue().convertToDouble()) << ", "
              << (global->hasAttr(kShardedAttrName) ? 1 : 0) << ", "
              << (upcycle ? cString(upcycle.getValue()) : "nullptr") << ", "
              << (global->hasAttr(kTransientAttrName) ? 1 : 0) << ", "
              << partAxes << ", " << partOf << ", "
              << (configConstants.contains(global.getSymNameAttr()) ? 1 : 0)
              << "},\n";
    stateBytes += (bytes + alignment - 1) / alignment * alignment;
    if (stateBytes > kMaxPlanBytes)
      return global.emitError() << "the globals up to this one take more "
                                   "than "
                                << kMaxPlanBytes << " bytes (2^56)";
  }
  for (auto function : module.getOps<func::FuncOp>())
    if (failed(emitFunction(function)))
      return failure();

  target.emitPreamble(os);
  // Code generated for another ABI than the runtime's headers describe
  // would fail on the model's initializer with a puzzling message.
  os << "static_assert(MOE_ABI_VERSION == " << MOE_ABI_VERSION
     << ", \"generated for model ABI " << MOE_ABI_VERSION
     << ", not this runtime's: compile it with this runtime's "
        "moe-compile\");\n\n";
  if (options.profile && !target.profileHeader().empty())
    os << "#include \"" << target.profileHeader() << "\"\n\n";
  os << "namespace {\n\nusing namespace " << target.kernelNamespace() << ";\n\n"
     << statics << "\n"
     << body << "const moe_global globals[] = {\n"
     << globals << "};\n\n"
     << "const moe_function functions[] = {\n";
  for (const std::string &entry : functionEntries)
    os << "    " << entry << ",\n";
  os << "};\n\n"
     << "const moe_model model = {MOE_ABI_VERSION, "
     << cString(options.modelName) << ", " << cString(configJson()) << ", "
     << cString(canonicalConfigOf(configJson())) << ", "
     << cString(trainingSettings()) << ", " << alignment << ", " << ranks
     << ", " << expertRanks << ", " << microBatchCount << ", " << stateBytes
     << ", " << globalOffsets.size() << ", globals, " << functionEntries.size()
     << ", functions, " << target.abiTargetExpression() << "};\n\n"
     << "} // namespace\n\n"
     << "extern \"C\" const moe_model *moe_get_model(void) { return &model; "
        "}\n";
  return success();
}

LogicalResult mlir::moe::target::emitModule(ModuleOp module,
                                            const TargetInfo &target,
                                            raw_ostream &os,
                                            const TranslateOptions &options) {
  return ModuleEmitter(module, target, os, options).emit();
}
