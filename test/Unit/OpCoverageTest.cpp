//===- OpCoverageTest.cpp - every moe op is priced and has a kernel -------===//
//
// Per-op tables that fail only when an op reaches them: the cost model
// refuses an op it has no formula for where a model is priced (moe-estimate,
// moe-cost-model, --profile builds), and the emitters one that no kernel
// computes where a model is compiled. A new op that the tested models do
// not use could pass every other test missing from both. The dialect's
// round-trip tests hold every op: each op there must be priced and (but
// for the fused loops the emitters write inline) have a kernel call, and
// each op the dialect registers must be there.
//
//===----------------------------------------------------------------------===//

#include "KernelCall.h"

#include "moe/Analysis/OpCost.h"
#include "moe/InitAllDialects.h"
#include "moe/MoeDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include "llvm/ADT/StringSet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace mlir;

namespace {

class OpCoverage : public testing::Test {
protected:
  OpCoverage()
      : context(registry(), MLIRContext::Threading::DISABLED),
        handler(&context, [this](Diagnostic &diagnostic) {
          diagnostics += diagnostic.str() + "\n";
          return success();
        }) {
    context.loadAllAvailableDialects();
    for (const char *file : {"ops.mlir", "grad-ops.mlir", "bf16-gemms.mlir"}) {
      std::string path = std::string(MOE_DIALECT_TESTS) + "/" + file;
      modules.push_back(
          parseSourceFile<ModuleOp>(path, ParserConfig(&context)));
      EXPECT_TRUE(modules.back()) << path << ": " << diagnostics;
    }
  }

  static DialectRegistry registry() {
    DialectRegistry result;
    moe::registerAllDialects(result);
    return result;
  }

  /// Calls `check` on every moe op at the top level of every function,
  /// with the function's queue fills (which the cost model prices by) and
  /// a label naming where the op is.
  template <typename Check> void forEachTopLevelOp(Check check) {
    for (OwningOpRef<ModuleOp> &module : modules)
      for (auto function : module->getOps<func::FuncOp>()) {
        Block &body = function.getBody().front();
        moe::QueueFill fill(body);
        for (Operation &op : body)
          if (isa<moe::MoeDialect>(op.getDialect())) {
            diagnostics.clear();
            check(op, fill, "@" + function.getSymName().str());
          }
      }
  }

  MLIRContext context;
  ScopedDiagnosticHandler handler;
  std::string diagnostics;
  std::vector<OwningOpRef<ModuleOp>> modules;
};

TEST_F(OpCoverage, RoundTripsHoldEveryOp) {
  llvm::StringSet<> seen;
  for (OwningOpRef<ModuleOp> &module : modules)
    module->walk([&](Operation *op) {
      if (isa<moe::MoeDialect>(op->getDialect()))
        seen.insert(op->getName().getStringRef());
    });
  auto *dialect = context.getLoadedDialect<moe::MoeDialect>();
  ASSERT_TRUE(dialect);
  int registered = 0;
  for (RegisteredOperationName name : context.getRegisteredOperations()) {
    if (&name.getDialect() != dialect)
      continue;
    ++registered;
    EXPECT_TRUE(seen.contains(name.getStringRef()))
        << name.getStringRef().str()
        << " has no round trip in test/Dialect/moe (ops.mlir, grad-ops.mlir, "
           "bf16-gemms.mlir)";
  }
  EXPECT_GT(registered, 40);
}

TEST_F(OpCoverage, EveryOpHasACostFormula) {
  // Nested ops (a fused loop's body) are priced with their loop.
  forEachTopLevelOp(
      [&](Operation &op, const moe::QueueFill &fill, const std::string &where) {
        EXPECT_TRUE(succeeded(moe::getOpCost(&op, fill)))
            << where << ": " << diagnostics;
      });
}

TEST_F(OpCoverage, EveryOpHasAKernelCall) {
  forEachTopLevelOp(
      [&](Operation &op, const moe::QueueFill &, const std::string &where) {
        if (isa<moe::FusedElementwiseOp>(op))
          return;
        EXPECT_TRUE(succeeded(moe::target::describeKernelCall(&op)))
            << where << ": no kernel computes "
            << op.getName().getStringRef().str();
      });
}

} // namespace
