//===- TargetInfo.h - what a code-generation target implements --*- C++ -*-===//
//
// The shared emitter (ModuleEmitter) walks a planned module and decides
// everything a target has in common: the state layout, the descriptors and
// the function table of the model ABI, each op's kernel call
// (KernelCall.h), the scalar body of each fused loop, and the names of all
// buffers. A target implements this interface for the few places where the
// generated source differs: its preamble, the shell of a function, how a
// kernel is called and a scalar passed, where constants and row counts
// live, how memory is copied, and how a fused loop is launched.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_TARGET_TARGETINFO_H
#define MOE_LIB_TARGET_TARGETINFO_H

#include "mlir/IR/Operation.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>
#include <optional>
#include <string>

namespace mlir::moe::target {

class TargetInfo {
public:
  virtual ~TargetInfo() = default;

  /// The #moe.target name of the modules this target emits.
  virtual StringRef targetName() const = 0;
  /// With --profile: the header (if the preamble lacks it) and the class
  /// (a scope on a moe_profile_site) that time each kernel call: the host
  /// clock where kernels finish on return, events on the device where they
  /// run asynchronously.
  virtual StringRef profileHeader() const = 0;
  virtual StringRef profileScope() const = 0;
  /// Fails, naming the limit, where the target's kernel cannot compute
  /// `op` (a size past what it was built for); the C++ kernels have none.
  virtual LogicalResult checkKernelLimits(Operation *op) const {
    return success();
  }
  /// The includes the generated source needs.
  virtual void emitPreamble(raw_ostream &os) const = 0;
  /// The namespace of the target's kernels (moert::cpu).
  virtual StringRef kernelNamespace() const = 0;
  /// The C++ expression of the model's moe_target (model ABI).
  virtual StringRef abiTargetExpression() const = 0;

  /// Opens the definition of a model function `name` with the signature of
  /// moe_function_ptr, binding `char *state` and `char *arena`; the
  /// function has `numInputs` inputs and `numOutputs` outputs.
  virtual void emitFunctionBegin(raw_ostream &os, StringRef name,
                                 unsigned numInputs,
                                 unsigned numOutputs) const = 0;
  virtual void emitFunctionEnd(raw_ostream &os) const = 0;

  /// How a kernel reads a 0-d tensor, given the pointer to it.
  virtual std::string scalarArgument(StringRef pointer) const = 0;
  /// A statement calling `kernel` with `args`; when `scalarResult` is not
  /// empty, the kernel returns a 0-d result to be stored through that
  /// pointer.
  virtual void emitCall(raw_ostream &os, StringRef kernel,
                        ArrayRef<std::string> args,
                        StringRef scalarResult) const = 0;
  /// A statement copying `bytes` bytes between two buffers.
  virtual void emitCopy(raw_ostream &os, StringRef destination,
                        StringRef source, int64_t bytes) const = 0;
  /// A statement setting `bytes` bytes of a buffer to zero.
  virtual void emitZero(raw_ostream &os, StringRef destination,
                        int64_t bytes) const = 0;
  /// The pointer a function passes to kernels for the constant array
  /// `hostArray` of `count` values of `type`, declaring what it needs.
  virtual std::string constantBuffer(raw_ostream &os, StringRef hostArray,
                                     StringRef type, int64_t count) const = 0;
  /// Declares `name`, an int64_t array of `count` row counts, filled with
  /// `fill` when it has a value (else a kernel fills it).
  virtual void emitRowCounts(raw_ostream &os, StringRef name, int64_t count,
                             std::optional<int64_t> fill) const = 0;

  /// Statements computing element `index` of a fused loop, given the
  /// expressions of its inputs' and output's buffers.
  using ElementBody = std::function<std::string(
      StringRef index, ArrayRef<std::string> inputs, StringRef output)>;
  /// A loop over `count` elements of `inputs` (float buffers) into
  /// `output`, each element computed by `body`; `inPlace`: `output` is the
  /// first input's buffer. `statics` receives namespace-scope code (a
  /// device kernel), `os` the statement.
  virtual void emitElementwiseLoop(raw_ostream &os, raw_ostream &statics,
                                   int64_t count, ArrayRef<std::string> inputs,
                                   StringRef output, const ElementBody &body,
                                   bool inPlace) const = 0;
};

} // namespace mlir::moe::target

#endif // MOE_LIB_TARGET_TARGETINFO_H
