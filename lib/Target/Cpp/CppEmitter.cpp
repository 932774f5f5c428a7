//===- CppEmitter.cpp - planned moe IR to C++ against the model ABI -------===//
//
// Each function becomes a straight-line sequence of CPU kernel calls on
// pointers into the state region (globals), the arena (planned values) and
// the caller's inputs; reshapes are pointer aliases and constants are static
// arrays. Nothing is allocated at run time.
//
//===----------------------------------------------------------------------===//

#include "CppEmitter.h"
#include "moe/Target/Cpp.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cctype>
#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::cpp;
using llvm::formatv;

ArrayRef<int64_t> cpp::shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

int64_t cpp::numElements(Value value) {
  return cast<RankedTensorType>(value.getType()).getNumElements();
}

std::string cpp::literal(double value) {
  if (std::isnan(value))
    return "NAN";
  if (std::isinf(value))
    return value > 0 ? "INFINITY" : "-INFINITY";
  // %.17g round-trips a double; a float literal needs no suffix because
  // every use converts explicitly. An integral value gets ".0" so that it
  // stays a double (std::min(double, 1) would not compile).
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  std::string result = text;
  if (result.find_first_of(".e") == std::string::npos)
    result += ".0";
  return result;
}

namespace {

constexpr int64_t kStateAlignment = 64;

int64_t byteSize(Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return tensor.getNumElements() * tensor.getElementTypeBitWidth() / 8;
}

FailureOr<StringRef> cType(Operation *op, Type type) {
  Type element = getElementTypeOrSelf(type);
  if (element.isF32())
    return StringRef("float");
  if (element.isSignlessInteger(32))
    return StringRef("int32_t");
  if (element.isSignlessInteger(64))
    return StringRef("int64_t");
  return op->emitError() << "the C++ target supports f32, i32 and i64 "
                            "tensors, got "
                         << type;
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
    if (c == '"' || c == '\\')
      quoted += '\\';
    if (c == '\n')
      quoted += "\\n";
    else
      quoted += c;
  }
  return quoted + "\"";
}

} // namespace

std::string CppEmitter::shapeArray(ArrayRef<int64_t> shape) {
  std::string name = fresh("shape");
  staticsOs << "const int64_t " << name << "[] = {";
  llvm::interleaveComma(shape, staticsOs);
  if (shape.empty())
    staticsOs << "0";
  staticsOs << "};\n";
  return name;
}

std::string CppEmitter::descriptor(StringRef name, Type type) {
  auto tensor = cast<RankedTensorType>(type);
  return formatv("{{{0}, {1}, {2}, {3}}", cString(name), abiDType(type),
                 tensor.getRank(), shapeArray(tensor.getShape()))
      .str();
}

std::string CppEmitter::rowCounts(Value buffer) {
  auto it = dispatchCounts.find(buffer);
  if (it != dispatchCounts.end())
    return it->second;
  // Not from a dispatch: every row of the buffer is a real row.
  ArrayRef<int64_t> shape = shapeOf(buffer);
  std::string name = fresh("full_counts");
  out << "  int64_t " << name << "[" << shape[0] << "];\n";
  out << "  std::fill_n(" << name << ", " << shape[0] << ", int64_t("
      << shape[1] << "));\n";
  dispatchCounts[buffer] = name;
  return name;
}

std::string CppEmitter::fusedLoop(FusedElementwiseOp op) {
  std::string loop;
  llvm::raw_string_ostream os(loop);
  Block &body = op.getBody().front();
  DenseMap<Value, std::string> scalars;
  os << "#pragma omp parallel for simd schedule(static)\n"
     << "  for (int64_t i = 0; i < " << numElements(op.getResult())
     << "; ++i) {\n";
  for (auto [input, argument] : llvm::zip(op.getInputs(), body.getArguments())) {
    std::string name = fresh("e");
    os << "    float " << name << " = " << p(input) << "[i];\n";
    scalars[argument] = name;
  }
  for (Operation &inner : body) {
    auto in = [&](unsigned index) {
      return scalars.lookup(inner.getOperand(index));
    };
    if (isa<YieldOp>(inner)) {
      os << "    " << p(op.getResult()) << "[i] = " << in(0) << ";\n  }";
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
            .Default([&](Operation *) { return std::string(); });
    std::string name = fresh("e");
    os << "    float " << name << " = " << expression << ";\n";
    scalars[inner.getResult(0)] = name;
  }
  return loop;
}

LogicalResult CppEmitter::declareResults(Operation *op) {
  auto offsets = op->getAttrOfType<DenseI64ArrayAttr>(kArenaOffsetsAttrName);
  bool inPlace = op->hasAttr(kInPlaceAttrName);
  if (!offsets && !inPlace)
    return op->emitError("no memory plan: run moe-plan-memory first");
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

LogicalResult CppEmitter::emitConstant(arith::ConstantOp op) {
  auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
  FailureOr<StringRef> type = cType(op, op.getType());
  if (!dense || failed(type))
    return op.emitError("the C++ target supports dense tensor constants");
  std::string name = fresh("constant");
  int64_t count = dense.getNumElements();
  staticsOs << *type << " " << name << "[" << count << "] = {";
  if (dense.isSplat()) {
    // Static zero-initialization covers the common all-zero splat; other
    // splats are filled once at load time.
    double value = isa<FloatType>(dense.getElementType())
                       ? dense.getSplatValue<APFloat>().convertToDouble()
                       : double(dense.getSplatValue<APInt>().getSExtValue());
    staticsOs << "};\n";
    if (value != 0)
      staticsOs << "const bool " << name << "_filled = (std::fill_n(" << name
                << ", " << count << ", " << *type << "(" << literal(value)
                << ")), true);\n";
  } else {
    if (isa<FloatType>(dense.getElementType()))
      llvm::interleaveComma(
          dense.getValues<APFloat>(), staticsOs, [&](const APFloat &v) {
            staticsOs << "float(" << literal(v.convertToDouble()) << ")";
          });
    else
      llvm::interleaveComma(
          dense.getValues<APInt>(), staticsOs,
          [&](const APInt &v) { staticsOs << v.getSExtValue(); });
    staticsOs << "};\n";
  }
  names[op.getResult()] = name;
  return success();
}

LogicalResult CppEmitter::emitOp(Operation *op) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ml_program::GlobalLoadOp load) -> LogicalResult {
        int64_t stateOffset =
            globalOffsets.lookup(load.getGlobal().getLeafReference());
        // The planner gives a load an arena buffer when a store to its
        // global comes before its last read.
        auto offsets =
            load->getAttrOfType<DenseI64ArrayAttr>(kArenaOffsetsAttrName);
        if (offsets && offsets[0] >= 0) {
          if (failed(declareResults(load)))
            return failure();
          out << "  std::memcpy(" << p(load.getResult()) << ", state + "
              << stateOffset << ", " << byteSize(load.getType()) << ");\n";
          return success();
        }
        FailureOr<StringRef> type = cType(op, load.getType());
        if (failed(type))
          return failure();
        std::string name = fresh("v");
        out << "  " << *type << " *" << name << " = reinterpret_cast<" << *type
            << " *>(state + " << stateOffset << ");\n";
        names[load.getResult()] = name;
        return success();
      })
      .Case([&](ml_program::GlobalStoreOp store) {
        Operation *producer = store.getValue().getDefiningOp();
        if (!producer || !producer->hasAttr(kInPlaceAttrName))
          out << "  std::memcpy(state + "
              << globalOffsets.lookup(store.getGlobal().getLeafReference())
              << ", " << p(store.getValue()) << ", "
              << byteSize(store.getValue().getType()) << ");\n";
        return success();
      })
      .Case([&](arith::ConstantOp constant) { return emitConstant(constant); })
      .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>([&](auto reshape) {
        names[reshape.getResult()] = p(reshape.getSrc());
        return success();
      })
      .Default([&](Operation *other) { return emitKernelCall(other); });
}

LogicalResult CppEmitter::emitFunction(func::FuncOp function) {
  names.clear();
  dispatchCounts.clear();
  // Symbol names may hold characters C++ identifiers cannot.
  std::string cName = "function_";
  for (char c : function.getSymName())
    cName += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (!functionNames.insert(cName).second)
    cName = fresh(cName + "_");
  out << "void " << cName
      << "(void *state_, void *arena_, const void *const *inputs, void *const "
         "*outputs) {\n"
      << "  char *state = static_cast<char *>(state_);\n"
      << "  char *arena = static_cast<char *>(arena_);\n"
      << "  (void)state;\n  (void)arena;\n";
  for (BlockArgument argument : function.getArguments()) {
    FailureOr<StringRef> type = cType(function, argument.getType());
    if (failed(type))
      return failure();
    std::string name = fresh("v");
    out << "  " << *type << " *" << name << " = const_cast<" << *type
        << " *>(static_cast<const " << *type << " *>(inputs["
        << argument.getArgNumber() << "]));\n";
    names[argument] = name;
  }
  for (Operation &op : function.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [index, value] : llvm::enumerate(ret.getOperands()))
        out << "  std::memcpy(outputs[" << index << "], " << p(value) << ", "
            << byteSize(value.getType()) << ");\n";
      continue;
    }
    if (failed(emitOp(&op)))
      return failure();
  }
  out << "}\n\n";

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
  functionEntries.push_back(formatv("{{{0}, {1}, {2}, {3}, {4}, {5}, {6}}",
                                    cString(function.getSymName()),
                                    function.getNumArguments(), inputs,
                                    function.getNumResults(), outputs,
                                    arenaBytes.getInt(), cName)
                                .str());
  return success();
}

LogicalResult CppEmitter::emitKernelCall(Operation *op) {
  if (failed(declareResults(op)))
    return failure();
  std::string call = kernelCall(op);
  if (call.empty())
    return op->emitError() << "the C++ target cannot emit '" << op->getName()
                           << "'";
  out << "  " << call << ";\n";
  return success();
}

LogicalResult CppEmitter::emit(StringRef modelName) {
  // The state region: every global, 64-byte aligned, in declaration order.
  int64_t stateBytes = 0;
  std::string globals;
  llvm::raw_string_ostream globalsOs(globals);
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    if (failed(cType(global, global.getType())))
      return failure();
    auto init = global->getAttrOfType<InitAttr>(kInitAttrName);
    if (!init)
      return global.emitError() << "the C++ target needs a '" << kInitAttrName
                                << "' initializer on every global";
    int64_t bytes = byteSize(global.getType());
    globalOffsets[global.getSymName()] = stateBytes;
    globalsOs << "    {" << descriptor(global.getSymName(), global.getType())
              << ", " << stateBytes << ", " << bytes << ", "
              << (global->hasAttr(kTrainableAttrName) ? 1 : 0) << ", "
              << (init.getKind() == InitKind::normal ? "MOE_INIT_NORMAL"
                                                     : "MOE_INIT_CONSTANT")
              << ", " << literal(init.getValue().convertToDouble()) << "},\n";
    stateBytes +=
        (bytes + kStateAlignment - 1) / kStateAlignment * kStateAlignment;
  }
  for (auto function : module.getOps<func::FuncOp>())
    if (failed(emitFunction(function)))
      return failure();

  os << "// Generated by moe-translate --emit=cpp; do not edit.\n"
     << "#include \"moert/CpuKernels.h\"\n"
     << "#include \"moert/ModelAbi.h\"\n\n"
     << "#include <algorithm>\n#include <cmath>\n#include <cstring>\n\n"
     << "namespace {\n\nusing namespace moert::cpu;\n\n"
     << statics << "\n"
     << body << "const moe_global globals[] = {\n"
     << globals << "};\n\n"
     << "const moe_function functions[] = {\n";
  for (const std::string &entry : functionEntries)
    os << "    " << entry << ",\n";
  os << "};\n\n"
     << "const moe_model model = {MOE_ABI_VERSION, " << cString(modelName)
     << ", " << cString(configJson()) << ", " << stateBytes << ", "
     << globalOffsets.size() << ", globals, " << functionEntries.size()
     << ", functions};\n\n"
     << "} // namespace\n\n"
     << "extern \"C\" const moe_model *moe_get_model(void) { return &model; "
        "}\n";
  return success();
}

LogicalResult mlir::moe::translateToCpp(ModuleOp module, llvm::raw_ostream &os,
                                        StringRef modelName) {
  return CppEmitter(module, os).emit(modelName);
}
