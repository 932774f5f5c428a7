//===- Evaluator.cpp - evaluate moe-dialect IR naively --------------------===//

#include "moe/Interpreter/Evaluator.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moe/MoeDialect.h"
#include "moert/Error.h"
#include "moert/Random.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using moe::ref::Tensor;

FailureOr<moe::ref::DType> moe::dtypeOf(Type elementType) {
  if (elementType.isF32())
    return ref::DType::F32;
  if (elementType.isF64())
    return ref::DType::F64;
  if (elementType.isSignlessInteger(32))
    return ref::DType::I32;
  if (elementType.isSignlessInteger(64))
    return ref::DType::I64;
  return failure();
}

namespace {

std::vector<int64_t> shapeOf(RankedTensorType type) {
  return {type.getShape().begin(), type.getShape().end()};
}

FailureOr<RankedTensorType> staticTensorType(Operation *op, Type type) {
  auto tensorType = dyn_cast<RankedTensorType>(type);
  if (!tensorType || !tensorType.hasStaticShape() ||
      failed(moe::dtypeOf(tensorType.getElementType())))
    return op->emitError() << "moe-run evaluates static tensors of f32, f64, "
                              "i32 or i64 only, got "
                           << type;
  return tensorType;
}

Tensor tensorFromAttr(RankedTensorType type, DenseElementsAttr attr) {
  Tensor tensor =
      Tensor::zeros(*moe::dtypeOf(type.getElementType()), shapeOf(type));
  if (isa<FloatType>(type.getElementType())) {
    llvm::transform(attr.getValues<APFloat>(), tensor.data.begin(),
                    [](const APFloat &v) { return v.convertToDouble(); });
  } else {
    llvm::transform(attr.getValues<APInt>(), tensor.data.begin(),
                    [](const APInt &v) { return double(v.getSExtValue()); });
  }
  return tensor;
}

std::optional<double> normLambdaOf(mlir::moe::GateOp gate) {
  if (FloatAttr lambda = gate.getNormLambdaAttr())
    return lambda.getValueAsDouble();
  return std::nullopt;
}

/// Evaluates the ops of one function body.
class FunctionRun {
public:
  FunctionRun(llvm::StringMap<Tensor> &globals) : globals(globals) {}

  FailureOr<std::vector<Tensor>> run(func::FuncOp func,
                                     const std::vector<Tensor> &arguments);

private:
  LogicalResult evaluate(Operation *op);
  const Tensor &get(Value value) { return values.at(value); }
  void set(Value value, Tensor tensor) {
    tensor.roundToDType();
    values[value] = std::move(tensor);
  }

  llvm::StringMap<Tensor> &globals;
  llvm::DenseMap<Value, Tensor> values;
};

FailureOr<std::vector<Tensor>>
FunctionRun::run(func::FuncOp func, const std::vector<Tensor> &arguments) {
  if (func.getNumArguments() != arguments.size())
    return func.emitError() << "expects " << func.getNumArguments()
                            << " arguments, got " << arguments.size();
  for (auto [index, argument] : llvm::enumerate(func.getArguments())) {
    auto type = cast<RankedTensorType>(argument.getType());
    const Tensor &given = arguments[index];
    if (ArrayRef<int64_t>(given.shape) != type.getShape() ||
        given.dtype != *moe::dtypeOf(type.getElementType()))
      return func.emitError() << "argument #" << index << " must be " << type
                              << ", got " << moert::dtypeName(given.dtype)
                              << " " << moert::formatShape(given.shape);
    set(argument, given);
  }
  for (Operation &op : func.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      std::vector<Tensor> results;
      for (Value operand : ret.getOperands())
        results.push_back(get(operand));
      return results;
    }
    if (failed(evaluate(&op)))
      return failure();
  }
  return func.emitError("function body has no func.return");
}

LogicalResult FunctionRun::evaluate(Operation *op) {
  for (Type type : op->getResultTypes())
    if (failed(staticTensorType(op, type)))
      return failure();
  try {
    return llvm::TypeSwitch<Operation *, LogicalResult>(op)
        .Case([&](moe::EmbeddingOp o) {
          set(o, moe::ref::embedding(get(o.getTable()), get(o.getIds())));
          return success();
        })
        .Case([&](moe::RmsNormOp o) {
          set(o, moe::ref::rmsNorm(get(o.getInput()), get(o.getWeight()),
                                   o.getEps().convertToDouble()));
          return success();
        })
        .Case([&](moe::LinearOp o) {
          set(o, moe::ref::linear(get(o.getInput()), get(o.getWeight()),
                                  o.getBias() ? &get(o.getBias()) : nullptr));
          return success();
        })
        .Case([&](moe::RouterOp o) {
          set(o, moe::ref::linear(get(o.getTokens()), get(o.getWeight()),
                                  o.getBias() ? &get(o.getBias()) : nullptr));
          return success();
        })
        .Case([&](moe::RopeOp o) {
          set(o, moe::ref::rope(get(o.getInput()),
                                o.getTheta().convertToDouble()));
          return success();
        })
        .Case([&](moe::AttentionOp o) {
          set(o, moe::ref::attention(get(o.getQuery()), get(o.getKey()),
                                     get(o.getValue()), o.getCausal()));
          return success();
        })
        .Case([&](moe::SwigluOp o) {
          set(o, moe::ref::swiglu(get(o.getGate()), get(o.getUp())));
          return success();
        })
        .Case([&](moe::AddOp o) {
          set(o, moe::ref::add(get(o.getLhs()), get(o.getRhs())));
          return success();
        })
        .Case([&](moe::MulOp o) {
          set(o, moe::ref::mul(get(o.getLhs()), get(o.getRhs())));
          return success();
        })
        .Case([&](moe::CrossEntropyOp o) {
          set(o,
              moe::ref::crossEntropy(get(o.getLogits()), get(o.getTargets())));
          return success();
        })
        .Case([&](moe::GateOp o) {
          moe::ref::GateResult r = moe::ref::gate(
              get(o.getLogits()), o.getTopK(), normLambdaOf(o),
              o.getNormEps().convertToDouble(), o.getRenormalize());
          set(o.getProbs(), std::move(r.probs));
          set(o.getWeights(), std::move(r.weights));
          set(o.getIndices(), std::move(r.indices));
          return success();
        })
        .Case([&](moe::DispatchOp o) {
          auto buffer = cast<RankedTensorType>(o.getBuffer().getType());
          moe::ref::DispatchResult r =
              moe::ref::dispatch(get(o.getTokens()), get(o.getIndices()),
                                 buffer.getDimSize(0), buffer.getDimSize(1));
          set(o.getBuffer(), std::move(r.buffer));
          set(o.getSlots(), std::move(r.slots));
          set(o.getDropped(), std::move(r.dropped));
          return success();
        })
        .Case([&](moe::ExpertFfnOp o) {
          set(o, moe::ref::expertFfn(get(o.getInput()), get(o.getGateProj()),
                                     get(o.getUpProj()), get(o.getDownProj())));
          return success();
        })
        .Case([&](moe::CombineOp o) {
          set(o,
              moe::ref::combine(get(o.getExpertOutput()), get(o.getWeights()),
                                get(o.getIndices()), get(o.getSlots())));
          return success();
        })
        .Case([&](moe::AuxLossOp o) {
          auto kind = o.getKind() == moe::AuxLossKind::skywork
                          ? moe::ref::AuxLossKind::Skywork
                          : moe::ref::AuxLossKind::Switch;
          set(o,
              moe::ref::auxLoss(kind, get(o.getProbs()), get(o.getIndices())));
          return success();
        })
        .Case([&](moe::ZLossOp o) {
          set(o, moe::ref::zLoss(get(o.getLogits())));
          return success();
        })
        .Case([&](moe::AdaptiveAuxCoeffOp o) {
          set(o, moe::ref::adaptiveAuxCoeff(
                     get(o.getAlpha()), get(o.getDropped()),
                     o.getXi().convertToDouble(),
                     o.getAlphaMax().convertToDouble(),
                     o.getBeta().convertToDouble(), o.getAssignments()));
          return success();
        })
        .Case([&](arith::ConstantOp o) -> LogicalResult {
          auto dense = dyn_cast<DenseElementsAttr>(o.getValue());
          if (!dense)
            return o.emitError("moe-run evaluates dense tensor constants only");
          set(o, tensorFromAttr(cast<RankedTensorType>(o.getType()), dense));
          return success();
        })
        .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
            [&](auto o) -> LogicalResult {
              // Row-major reshapes keep the data as it is.
              Tensor result = get(o.getSrc());
              result.shape = shapeOf(o.getResultType());
              set(o, std::move(result));
              return success();
            })
        .Case([&](ml_program::GlobalLoadOp o) -> LogicalResult {
          auto it = globals.find(o.getGlobal().getLeafReference());
          if (it == globals.end())
            return o.emitError()
                   << "global " << o.getGlobal() << " has no value";
          set(o, it->second);
          return success();
        })
        .Case([&](ml_program::GlobalStoreOp o) -> LogicalResult {
          Tensor value = get(o.getValue());
          globals[o.getGlobal().getLeafReference()] = std::move(value);
          return success();
        })
        .Default([&](Operation *other) {
          return other->emitError()
                 << "moe-run cannot evaluate '" << other->getName() << "'";
        });
  } catch (const moert::Error &error) {
    return op->emitError() << error.what();
  }
}

} // namespace

LogicalResult moe::Evaluator::initializeGlobals(uint64_t seed) {
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    FailureOr<RankedTensorType> type =
        staticTensorType(global, global.getType());
    if (failed(type))
      return WalkResult::interrupt();
    if (auto value =
            dyn_cast_if_present<DenseElementsAttr>(global.getValueAttr())) {
      globals[global.getSymName()] = tensorFromAttr(*type, value);
      return WalkResult::advance();
    }
    auto init =
        global->getAttrOfType<mlir::moe::InitAttr>(mlir::moe::kInitAttrName);
    if (!init) {
      global.emitError() << "global has neither a dense value nor a '"
                         << mlir::moe::kInitAttrName << "' initializer";
      return WalkResult::interrupt();
    }
    Tensor tensor =
        Tensor::zeros(*dtypeOf(type->getElementType()), shapeOf(*type));
    uint64_t key = moert::streamKey(seed, global.getSymName().str());
    double value = init.getValue().convertToDouble();
    for (int64_t i = 0; i < tensor.numel(); ++i)
      tensor.data[i] = init.getKind() == mlir::moe::InitKind::normal
                           ? value * moert::normalAt(key, i)
                           : value;
    tensor.roundToDType();
    globals[global.getSymName()] = std::move(tensor);
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

LogicalResult
moe::Evaluator::loadGlobals(const moert::SafetensorsReader &file) {
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    FailureOr<RankedTensorType> type =
        staticTensorType(global, global.getType());
    if (failed(type))
      return WalkResult::interrupt();
    const moert::TensorView *view = file.find(global.getSymName());
    if (!view) {
      global.emitError() << "tensor '" << global.getSymName()
                         << "' is missing from " << file.getPath();
      return WalkResult::interrupt();
    }
    ref::DType dtype = *dtypeOf(type->getElementType());
    if (view->dtype != dtype ||
        ArrayRef<int64_t>(view->shape) != type->getShape()) {
      global.emitError() << "tensor '" << global.getSymName() << "' in "
                         << file.getPath() << " is "
                         << moert::dtypeName(view->dtype) << " "
                         << moert::formatShape(view->shape)
                         << ", but the model expects "
                         << moert::dtypeName(dtype) << " "
                         << moert::formatShape(shapeOf(*type));
      return WalkResult::interrupt();
    }
    globals[global.getSymName()] = Tensor::fromView(*view);
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

void moe::Evaluator::saveGlobals(const std::string &path) const {
  std::vector<std::pair<std::string, const Tensor *>> named;
  for (const auto &entry : globals)
    named.push_back({entry.getKey().str(), &entry.getValue()});
  llvm::sort(named, llvm::less_first());
  std::vector<std::vector<char>> storage;
  std::vector<moert::TensorView> views = ref::viewsOf(named, storage);
  moert::writeSafetensors(path, views);
}

FailureOr<std::vector<Tensor>>
moe::Evaluator::run(func::FuncOp func, const std::vector<Tensor> &arguments) {
  return FunctionRun(globals).run(func, arguments);
}
