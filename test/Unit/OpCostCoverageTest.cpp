//===- OpCostCoverageTest.cpp - every moe op has a cost formula -----------===//
//
// The cost model refuses an op it has no formula for, but only where a
// model is priced (moe-estimate, moe-cost-model, --profile builds), so a
// new op that the tiny model's train step does not use could pass every
// other test unpriced. The dialect's round-trip tests hold every op: each
// op there must be priced, and each op the dialect registers must be there.
//
//===----------------------------------------------------------------------===//

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

using namespace mlir;

namespace {

TEST(OpCostCoverage, EveryMoeOpHasAFormula) {
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diagnostic) {
    diagnostics += diagnostic.str() + "\n";
    return success();
  });

  llvm::StringSet<> seen;
  for (const char *file : {"ops.mlir", "grad-ops.mlir", "bf16-gemms.mlir"}) {
    std::string path = std::string(MOE_DIALECT_TESTS) + "/" + file;
    OwningOpRef<ModuleOp> module =
        parseSourceFile<ModuleOp>(path, ParserConfig(&context));
    ASSERT_TRUE(module) << path << ": " << diagnostics;
    module->walk([&](Operation *op) {
      if (isa<moe::MoeDialect>(op->getDialect()))
        seen.insert(op->getName().getStringRef());
    });
    for (auto function : module->getOps<func::FuncOp>()) {
      moe::QueueFill fill(function.getBody().front());
      // Nested ops (a fused loop's body) are priced with their loop.
      for (Operation &op : function.getBody().front()) {
        if (!isa<moe::MoeDialect>(op.getDialect()))
          continue;
        diagnostics.clear();
        EXPECT_TRUE(succeeded(moe::getOpCost(&op, fill)))
            << file << ", @" << function.getSymName().str() << ": "
            << diagnostics;
      }
    }
  }

  auto *dialect = context.getLoadedDialect<moe::MoeDialect>();
  ASSERT_TRUE(dialect);
  int registered = 0;
  for (RegisteredOperationName name : context.getRegisteredOperations()) {
    if (&name.getDialect() != dialect)
      continue;
    ++registered;
    EXPECT_TRUE(seen.contains(name.getStringRef()))
        << name.getStringRef().str()
        << " has no round trip in test/Dialect/moe (ops.mlir, grad-ops.mlir)";
  }
  EXPECT_GT(registered, 40);
}

} // namespace
