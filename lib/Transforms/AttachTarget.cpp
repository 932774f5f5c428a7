//===- AttachTarget.cpp - the module's code-generation target -------------===//
//
// The target's facts live in one verified attribute (#moe.target) instead of
// in constants that the planner and each emitter would have to keep equal.
//
//===----------------------------------------------------------------------===//

#include "moe/Transforms/PassOrder.h"
#include "moe/Transforms/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_ATTACHTARGET
#include "moe/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct AttachTargetPass : moe::impl::AttachTargetBase<AttachTargetPass> {
  using AttachTargetBase::AttachTargetBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto emitError = [&] {
      return module.emitError() << "moe-attach-target: ";
    };
    TargetAttr defaults =
        getDefaultTarget(&getContext(), StringRef(targetName));
    int64_t bytes = alignment == 0 && defaults ? defaults.getAlignment()
                                               : int64_t(alignment);
    TargetAttr target = TargetAttr::getChecked(emitError, &getContext(),
                                               StringRef(targetName), bytes);
    if (!target)
      return signalPassFailure();
    // A memory plan is made for its target's alignment (and the CUDA
    // target's kernels); another target needs its own plan.
    TargetAttr planned = getModuleTarget(module);
    if (hasMemoryPlan(module) && planned != target) {
      emitError() << "the module is planned for " << planned
                  << ": plan the IR from before moe-plan-memory for " << target
                  << " instead";
      return signalPassFailure();
    }
    module->setAttr(kTargetAttrName, target);
  }
};

} // namespace
