//===- CompileFuzzer.cpp - moe-compile's passes and emitters --------------===//
//
// Any model moe-compile takes (a config.json, or IR text) either compiles
// to source, as moe-compile's pipelines and translations make it, or is
// rejected with diagnostics: no pass or emitter may crash on a model that
// imports, or parses and verifies. A hash of the text picks the pipeline's
// options (precision, target, recomputation, micro-batches, adaptive
// coefficients, expert parallelism), so that each input runs one
// reproducible combination and the mutations of a seed reach them all.
//
//===----------------------------------------------------------------------===//

#include "FuzzModel.h"
#include "moe/Pipelines/Pipelines.h"
#include "moe/Target/Translations.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <cstddef>
#include <cstdint>

using namespace mlir;

/// Models of more ops (about 60 layers) are not compiled.
constexpr int64_t kMaxOps = 3000;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  moe::registerTranslations(); // once
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  OwningOpRef<ModuleOp> module = moe::fuzz::fuzzModel(text);
  if (!module)
    return 0;
  // Thousands of layers take the passes long, and fuzzing time finds more
  // in other models.
  int64_t ops = 0;
  module->walk([&](Operation *) { ++ops; });
  if (ops > kMaxOps)
    return 0;

  // A hash that is the same in every process and LLVM build, so that a
  // saved input replays its combination.
  uint64_t choice = llvm::xxh3_64bits(text);
  auto bit = [&](int index) { return (choice >> index) & 1; };
  moe::TrainPipelineOptions options;
  options.precision = bit(0) ? "bf16" : "f32";
  bool cuda = bit(1);
  options.weightCopies = cuda ? "per-step" : "per-expert";
  options.recompute = bit(2);
  options.microBatches = bit(3) ? 2 : 1;
  options.adaptiveAux = bit(4);
  options.expertParallel = bit(5) ? 2 : 1;
  options.distributedOptimizer = bit(5) && bit(6);

  PassManager pm = PassManager::on<ModuleOp>(module->getContext());
  moe::buildTrainPipeline(pm, options);
  moe::buildCodegenPipeline(pm, cuda ? "cuda" : "cpu");
  if (failed(pm.run(*module)))
    return 0;
  llvm::raw_null_ostream source;
  (void)moe::lookupTranslation(cuda ? "cuda" : "cpp")
      ->translate(*module, source, moe::TranslateOptions());
  return 0;
}
