//===- CppEmitter.h - the C++ emitter, shared by its parts ------*- C++ -*-===//
//
// CppEmitter.cpp lays out the module (state region, functions, constants,
// fused loops); KernelCalls.cpp maps each other op to its CPU kernel call.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_TARGET_CPP_CPPEMITTER_H
#define MOE_LIB_TARGET_CPP_CPPEMITTER_H

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <string>

namespace mlir::moe::cpp {

ArrayRef<int64_t> shapeOf(Value value);
int64_t numElements(Value value);
/// A C++ expression of exactly `value`.
std::string literal(double value);

class CppEmitter {
public:
  CppEmitter(ModuleOp module, llvm::raw_ostream &os) : module(module), os(os) {}

  LogicalResult emit(StringRef modelName);

private:
  LogicalResult emitFunction(func::FuncOp function);
  LogicalResult emitOp(Operation *op);
  LogicalResult emitKernelCall(Operation *op);
  /// The C++ statement (without its semicolon) that computes `op` into its
  /// declared results, or "" when the target has no kernel for `op`. In
  /// KernelCalls.cpp.
  std::string kernelCall(Operation *op);
  LogicalResult emitConstant(arith::ConstantOp op);
  /// Declares the C++ pointer of each result of `op`: its arena buffer, or
  /// the storage of the global it is stored to in place.
  LogicalResult declareResults(Operation *op);
  std::string shapeArray(ArrayRef<int64_t> shape);
  /// The config the module was imported from (moe.config), or "".
  std::string configJson() {
    auto config = module->getAttrOfType<StringAttr>(kConfigAttrName);
    return config ? config.str() : "";
  }
  std::string descriptor(StringRef name, Type type);

  /// The pointer expression of `value`.
  std::string p(Value value) { return names.lookup(value); }
  /// The scalar value of a 0-d tensor.
  std::string s(Value value) { return "*" + p(value); }
  std::string fresh(StringRef prefix) {
    return llvm::formatv("{0}{1}", prefix, counter++).str();
  }
  /// The row count of the dispatch that produced `buffer`, or a full one.
  std::string rowCounts(Value buffer);
  /// A generated kernel: one loop computing the fused body per element.
  std::string fusedLoop(FusedElementwiseOp op);

  ModuleOp module;
  llvm::raw_ostream &os;
  llvm::StringMap<int64_t> globalOffsets;
  DenseMap<Value, std::string> names;
  DenseMap<Value, std::string> dispatchCounts;
  std::string statics; // namespace-scope arrays: shapes, constants
  llvm::raw_string_ostream staticsOs{statics};
  std::string body;
  llvm::raw_string_ostream out{body};
  SmallVector<std::string> functionEntries;
  llvm::StringSet<> functionNames;
  int counter = 0;
};

} // namespace mlir::moe::cpp

#endif // MOE_LIB_TARGET_CPP_CPPEMITTER_H
