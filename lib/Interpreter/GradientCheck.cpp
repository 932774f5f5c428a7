//===- GradientCheck.cpp - finite-difference checks of moe-autodiff -------===//

#include "moe/Interpreter/GradientCheck.h"
#include "moe/Transforms/Passes.h"
#include "moert/Random.h"

#include "mlir/Pass/PassManager.h"

#include <cmath>
#include <limits>
#include <set>

using namespace mlir;
using mlir::moe::ref::Tensor;

namespace {

double dot(const Tensor &lhs, const Tensor &rhs) {
  double sum = 0;
  for (int64_t i = 0; i < lhs.numel(); ++i)
    sum += lhs.data[i] * rhs.data[i];
  return sum;
}

/// Up to `count` distinct element indices of a tensor of `numel` elements.
std::vector<int64_t> sampleElements(int64_t numel, int64_t count,
                                    moert::Stream &stream) {
  std::vector<int64_t> indices;
  if (numel <= count) {
    for (int64_t i = 0; i < numel; ++i)
      indices.push_back(i);
    return indices;
  }
  std::set<int64_t> chosen;
  while (static_cast<int64_t>(chosen.size()) < count)
    chosen.insert(static_cast<int64_t>(stream.below(numel)));
  return {chosen.begin(), chosen.end()};
}

} // namespace

LogicalResult moe::addGradientFunction(ModuleOp module,
                                       const GradientCheckOptions &options) {
  PassManager pm(module.getContext());
  pm.addPass(createAutodiff(AutodiffOptions{options.function,
                                            options.function + "_vjp",
                                            /*recompute=*/false,
                                            /*cotangentArgument=*/true}));
  return pm.run(module);
}

FailureOr<std::vector<moe::TensorGradientCheck>> moe::checkGradients(
    ModuleOp module, Evaluator &evaluator, const std::vector<Tensor> &arguments,
    const GradientCheckOptions &options, ref::Communicator *communicator) {
  auto function = module.lookupSymbol<func::FuncOp>(options.function);
  if (!function)
    return module.emitError() << "no function @" << options.function;
  std::string vjpName = options.function + "_vjp";
  if (!module.lookupSymbol(vjpName)) {
    if (communicator)
      return module.emitError() << "no gradient function @" << vjpName;
    if (failed(addGradientFunction(module, options)))
      return failure();
  }
  auto vjp = module.lookupSymbol<func::FuncOp>(vjpName);
  // What every rank adds up: the objective and the gradients.
  auto sumOverRanks = [&](const Tensor &local) {
    return communicator ? ref::allReduce(*communicator, local,
                                         ref::Reduction::Sum, local.dtype)
                        : local;
  };

  // A random cotangent for the output.
  FailureOr<std::vector<Tensor>> base = evaluator.run(function, arguments);
  if (failed(base))
    return failure();
  Tensor cotangent = (*base)[0];
  uint64_t key =
      moert::streamKey(options.seed + (communicator ? communicator->rank() : 0),
                       "grad-check-cotangent");
  for (int64_t i = 0; i < cotangent.numel(); ++i)
    cotangent.data[i] = moert::normalAt(key, i);
  std::vector<Tensor> vjpArguments = arguments;
  vjpArguments.push_back(cotangent);
  FailureOr<std::vector<Tensor>> gradients = evaluator.run(vjp, vjpArguments);
  if (failed(gradients))
    return failure();

  auto objective = [&]() -> FailureOr<double> {
    FailureOr<std::vector<Tensor>> outputs = evaluator.run(function, arguments);
    if (failed(outputs))
      return failure();
    Tensor objective =
        Tensor::scalar(ref::DType::F64, dot(cotangent, (*outputs)[0]));
    return sumOverRanks(objective).data[0];
  };

  std::vector<TensorGradientCheck> checks;
  moert::Stream sampler(options.seed, "grad-check-elements");
  unsigned resultIndex = 1;
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    if (!global->hasAttr(kTrainableAttrName))
      continue;
    // Perturbing element i of a sharded global on every rank would move
    // P elements of the whole tensor at once.
    if (global->hasAttr(kShardedAttrName))
      return global.emitError("the gradient check perturbs replicated "
                              "globals only, and this one is sharded");
    Tensor analytic = sumOverRanks((*gradients)[resultIndex++]);
    Tensor &parameter = evaluator.getGlobal(global.getSymName());
    TensorGradientCheck check{global.getSymName().str()};
    double differenceSq = 0, analyticSq = 0, numericSq = 0;
    for (int64_t index :
         sampleElements(parameter.numel(), options.samplesPerTensor, sampler)) {
      double original = parameter.data[index];
      parameter.data[index] = original + options.step;
      FailureOr<double> plus = objective();
      parameter.data[index] = original - options.step;
      FailureOr<double> minus = objective();
      parameter.data[index] = original;
      if (failed(plus) || failed(minus))
        return failure();
      double numeric = (*plus - *minus) / (2 * options.step);
      double exact = analytic.data[index];
      differenceSq += (exact - numeric) * (exact - numeric);
      analyticSq += exact * exact;
      numericSq += numeric * numeric;
      ++check.checkedElements;
    }
    check.relativeError = gradientRelativeError(
        differenceSq, analyticSq, numericSq,
        check.checkedElements * options.gradientFloor * options.gradientFloor);
    checks.push_back(check);
  }
  return checks;
}

double mlir::moe::gradientRelativeError(double differenceSq, double analyticSq,
                                        double numericSq, double floorSq) {
  if (!std::isfinite(differenceSq) || !std::isfinite(analyticSq) ||
      !std::isfinite(numericSq))
    return std::numeric_limits<double>::infinity();
  double scale = std::sqrt(std::max({analyticSq, numericSq, floorSq}));
  return scale > 0 ? std::sqrt(differenceSq) / scale : 0.0;
}
