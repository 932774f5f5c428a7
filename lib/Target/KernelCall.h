//===- KernelCall.h - target-neutral kernel calls ---------------*- C++ -*-===//
//
// What every target shares about an op's kernel: its name and its
// arguments, in the order of the kernels' headers (moert/CpuKernels.h; a
// device target's kernels take the same arguments), with the shape
// arithmetic done once. A target only decides how a call is written.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_TARGET_KERNELCALL_H
#define MOE_LIB_TARGET_KERNELCALL_H

#include "mlir/IR/Operation.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace mlir::moe::target {

ArrayRef<int64_t> shapeOf(Value value);
int64_t numElements(Value value);
/// A C++ expression of exactly `value` (a double).
std::string literal(double value);

/// One argument of a kernel call.
struct KernelArg {
  enum class Kind {
    /// The buffer of tensor `value`.
    Buffer,
    /// The value of 0-d tensor `value`, which the kernel reads.
    Scalar,
    /// `text`: a C++ expression every target's kernels accept as is (a
    /// size, a double, a bool, a config struct or an enum value).
    Literal,
    /// The per-expert row counts of expert buffer `value`: those its
    /// dispatch wrote, or all rows when it comes from elsewhere.
    RowCounts,
    /// Where the kernel writes the row counts of expert buffer `value`.
    NewRowCounts,
    /// An array of the buffers of `values`, read only.
    BufferList,
    /// An array of the buffers of `values`, which the kernel writes.
    OutputBufferList,
    /// An array of the element counts of `values`.
    SizeList,
  };
  Kind kind;
  Value value;
  std::string text;
  SmallVector<Value> values;
};

KernelArg buffer(Value value);
KernelArg scalar(Value value);
KernelArg size(int64_t value);
KernelArg real(double value);
KernelArg real(const llvm::APFloat &value);
KernelArg flag(bool value);
KernelArg expression(std::string text);
KernelArg rowCounts(Value expertBuffer);
KernelArg newRowCounts(Value expertBuffer);
KernelArg bufferList(ValueRange values);
KernelArg outputBufferList(ValueRange values);
KernelArg sizeList(ValueRange values);

/// The kernel that computes an op.
struct KernelCall {
  std::string kernel;
  SmallVector<KernelArg> args;
  /// A 0-d result that the kernel returns rather than writes, or null.
  Value scalarResult;
};

/// The kernel call computing `op`, or failure when no kernel computes it
/// (ops that are not kernels: loads, stores, constants, views, fused loops).
FailureOr<KernelCall> describeKernelCall(Operation *op);

} // namespace mlir::moe::target

#endif // MOE_LIB_TARGET_KERNELCALL_H
