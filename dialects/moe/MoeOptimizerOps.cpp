//===- MoeOptimizerOps.cpp - verifiers of the optimizer ops ---------------===//

#include "VerifierUtils.h"
#include "moe/MoeDialect.h"

#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::detail;

LogicalResult LrScheduleOp::verify() {
  double maxLr = getMaxLr().convertToDouble();
  double minLr = getMinLr().convertToDouble();
  if (failed(expectNonNegative(*this, "max_lr", maxLr)) ||
      failed(expectNonNegative(*this, "min_lr", minLr)))
    return failure();
  if (minLr > maxLr)
    return emitOpError() << "attribute 'min_lr' (" << minLr
                         << ") must not exceed 'max_lr' (" << maxLr << ")";
  // The accessors return unsigned values; the attributes are signed.
  int64_t warmup = getWarmupStepsAttr().getInt();
  int64_t decay = getDecayStepsAttr().getInt();
  if (warmup < 0)
    return emitOpError() << "attribute 'warmup_steps' must be >= 0, got "
                         << warmup;
  // A constant rate after warmup has no decay to end.
  if (getDecay() != LrDecay::constant && decay <= warmup)
    return emitOpError() << "attribute 'decay_steps' (" << decay
                         << ") must exceed 'warmup_steps' (" << warmup << ")";
  return success();
}

LogicalResult GlobalNormOp::verify() {
  if (getTensors().empty())
    return emitOpError("needs at least one tensor");
  Type expected = getElementTypeOrSelf(getNorm());
  for (auto [index, tensor] : llvm::enumerate(getTensors()))
    if (getElementTypeOrSelf(tensor) != expected)
      return emitOpError() << "'tensors' #" << index
                           << " must have element type " << expected
                           << " (that of 'norm'), got "
                           << getElementTypeOrSelf(tensor);
  return success();
}

LogicalResult AdamWOp::verify() {
  double beta1 = getBeta1().convertToDouble();
  double beta2 = getBeta2().convertToDouble();
  if (!(beta1 >= 0 && beta1 < 1))
    return emitOpError() << "attribute 'beta1' must be in [0, 1), got "
                         << beta1;
  if (!(beta2 >= 0 && beta2 < 1))
    return emitOpError() << "attribute 'beta2' must be in [0, 1), got "
                         << beta2;
  if (failed(expectPositive(*this, "eps", getEps().convertToDouble())) ||
      failed(expectNonNegative(*this, "weight_decay",
                               getWeightDecay().convertToDouble())) ||
      failed(expectNonNegative(*this, "max_grad_norm",
                               getMaxGradNorm().convertToDouble())))
    return failure();
  return expectSameElementType(*this, {{"param", getParam()}, {"lr", getLr()}});
}

unsigned AdamWOp::getInPlaceOperandIndex(unsigned resultIndex) {
  // new_param, new_exp_avg, new_exp_avg_sq overwrite param, exp_avg,
  // exp_avg_sq (operand 1 is the gradient).
  return resultIndex == 0 ? 0 : resultIndex + 1;
}
