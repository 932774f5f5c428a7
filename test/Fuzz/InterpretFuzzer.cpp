//===- InterpretFuzzer.cpp - the interpreter on the models it takes -------===//
//
// The interpreter is the oracle of every test: any model that imports, or
// parses and verifies (FuzzModel.h), runs its @forward, and a train step
// where the train pipeline makes one, on token ids of its vocabulary, or
// reports an error; nothing crashes. Models with a tensor of more than
// 2^20 elements are skipped: the interpreter computes every element in
// double, and fuzzing time finds more in small models (the sizes the tools
// refuse are the IR fuzzer's).
//
//===----------------------------------------------------------------------===//

#include "FuzzModel.h"
#include "moe/Interpreter/Evaluator.h"
#include "moe/Pipelines/Pipelines.h"
#include "moert/Error.h"
#include "moert/StateNames.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/xxhash.h"

#include <cstddef>
#include <cstdint>
#include <vector>

using namespace mlir;

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 20;

/// Whether a tensor type anywhere in `module` (a global's, an argument's, a
/// result's) holds more than kMaxElements.
bool hasLargeTensor(ModuleOp module) {
  auto large = [](Type type) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape())
      return false;
    int64_t elements = 1;
    for (int64_t size : tensor.getShape())
      if (size > kMaxElements ||
          (elements *= std::max<int64_t>(size, 1)) > kMaxElements)
        return true;
    return false;
  };
  return module
      .walk([&](Operation *op) {
        if (auto global = dyn_cast<ml_program::GlobalOp>(op))
          if (large(global.getType()))
            return WalkResult::interrupt();
        for (Type type : op->getResultTypes())
          if (large(type))
            return WalkResult::interrupt();
        for (Region &region : op->getRegions())
          for (Block &block : region)
            for (BlockArgument argument : block.getArguments())
              if (large(argument.getType()))
                return WalkResult::interrupt();
        return WalkResult::advance();
      })
      .wasInterrupted();
}

/// Runs `name` of `module` from fresh globals on arguments of zeros, token
/// ids spread over the embedding table's rows where it has one.
void run(ModuleOp module, StringRef name) {
  auto func = module.lookupSymbol<func::FuncOp>(name);
  if (!func || func.isExternal())
    return;
  int64_t vocab = 1;
  if (auto table = module.lookupSymbol<ml_program::GlobalOp>(
          llvm::StringRef(moert::kTokenEmbeddingGlobal)))
    if (auto type = dyn_cast<RankedTensorType>(table.getType());
        type && type.getRank() == 2 && type.getDimSize(0) > 0)
      vocab = type.getDimSize(0);
  std::vector<moe::ref::Tensor> arguments;
  for (Type type : func.getArgumentTypes()) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor)
      return;
    FailureOr<moe::ref::DType> dtype = moe::dtypeOf(tensor.getElementType());
    if (failed(dtype))
      return;
    moe::ref::Tensor argument = moe::ref::Tensor::zeros(
        *dtype, {tensor.getShape().begin(), tensor.getShape().end()});
    if (isa<IntegerType>(tensor.getElementType()))
      for (int64_t i = 0; i < argument.numel(); ++i)
        argument.data[i] = static_cast<double>(i * 7 % vocab);
    arguments.push_back(std::move(argument));
  }
  moe::Evaluator evaluator(module);
  if (failed(evaluator.initializeGlobals(/*seed=*/0)))
    return;
  (void)evaluator.run(func, arguments);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  OwningOpRef<ModuleOp> module = moe::fuzz::fuzzModel(text);
  if (!module || hasLargeTensor(*module))
    return 0;
  try {
    run(*module, "forward");
    // The train step in f32 or bf16, as a hash of the text picks.
    moe::TrainPipelineOptions options;
    options.precision = llvm::xxh3_64bits(text) & 1 ? "bf16" : "f32";
    PassManager pm = PassManager::on<ModuleOp>(module->getContext());
    moe::buildTrainPipeline(pm, options);
    if (succeeded(pm.run(*module)) && !hasLargeTensor(*module))
      run(*module, "train_step");
  } catch (const moert::Error &) {
    // A kernel's refusal of its input: an error, as moe-run reports it.
  }
  return 0;
}
