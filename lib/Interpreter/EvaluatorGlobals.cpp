//===- EvaluatorGlobals.cpp - the interpreter's globals -------------------===//
//
// The evaluator's state: globals from their initializers, from weights
// files, from a dense checkpoint by upcycle rules; sharded globals'
// parts, gathered and written back.
//
//===----------------------------------------------------------------------===//

#include "EvaluatorUtils.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moe/MoeDialect.h"
#include "moert/Error.h"
#include "moert/GridGroups.h"
#include "moert/Random.h"
#include "moert/Upcycle.h"
#include "moert/WeightSource.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"

#include <algorithm>
#include <new>
#include <set>

using namespace mlir;
using namespace mlir::moe::evaluator;

namespace {

/// A global of `type`: the `count` elements of `whole` at `offset`, then
/// zeros (an optimizer part's padding).
Tensor runOf(Tensor whole, int64_t offset, int64_t count,
             RankedTensorType type) {
  std::vector<int64_t> shape = shapeOf(type);
  if (offset == 0 && count == whole.numel() && whole.shape == shape)
    return whole;
  Tensor run = Tensor::zeros(whole.dtype, std::move(shape));
  std::copy_n(whole.data.begin() + offset, count, run.data.begin());
  return run;
}

} // namespace

std::vector<int64_t> moe::Evaluator::Placement::wholeShape() const {
  std::vector<int64_t> shape = shapeOf(rankTensor);
  if (experts && experts->size() > 1)
    shape.at(0) *= experts->size();
  return shape;
}

int64_t moe::Evaluator::Placement::offset() const {
  return (experts ? experts->rank() * rankTensor.getNumElements() : 0) +
         (parts ? parts->rank() * globalElements : 0);
}

int64_t moe::Evaluator::Placement::runElements() const {
  if (!parts)
    return globalElements;
  return std::clamp<int64_t>(rankTensor.getNumElements() -
                                 parts->rank() * globalElements,
                             0, globalElements);
}

LogicalResult
moe::Evaluator::initializeGlobals(uint64_t seed,
                                  const moert::WeightSource *provided) {
  llvm::DenseSet<StringAttr> constants =
      mlir::moe::configConstantGlobals(module);
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    if (provided && provided->contains(global.getSymName().str()) &&
        !constants.contains(global.getSymNameAttr()))
      return WalkResult::advance();
    FailureOr<RankedTensorType> type =
        staticTensorType(global, global.getType());
    if (failed(type))
      return WalkResult::interrupt();
    if (auto value =
            dyn_cast_if_present<DenseElementsAttr>(global.getValueAttr())) {
      if (global->hasAttr(mlir::moe::kShardedAttrName)) {
        global.emitError("a sharded global takes its values from its "
                         "initializer, not a value");
        return WalkResult::interrupt();
      }
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
    Tensor tensor;
    try {
      tensor = Tensor::zeros(*dtypeOf(type->getElementType()), shapeOf(*type));
    } catch (const std::bad_alloc &) {
      global.emitError() << "cannot allocate "
                         << type->getNumElements() * sizeof(double)
                         << " bytes for global '" << global.getSymName() << "'";
      return WalkResult::interrupt();
    }
    FailureOr<Placement> placement = placementOf(global);
    if (failed(placement))
      return WalkResult::interrupt();
    int64_t offset = placement->offset();
    uint64_t key = moert::streamKey(seed, global.getSymName().str());
    double value = init.getValue().convertToDouble();
    // An optimizer part's padding stays zero.
    for (int64_t i = 0; i < placement->runElements(); ++i)
      tensor.data[i] = init.getKind() == mlir::moe::InitKind::normal
                           ? value * moert::normalAt(key, offset + i)
                           : value;
    tensor.roundToDType();
    globals[global.getSymName()] = std::move(tensor);
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

LogicalResult moe::Evaluator::loadGlobals(const moert::WeightSource &source) {
  std::set<std::string> unused = source.names();
  // The config's values hold over the file's, as a binary's resume does.
  llvm::DenseSet<StringAttr> constants =
      mlir::moe::configConstantGlobals(module);
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    std::string name = global.getSymName().str();
    unused.erase(name);
    if (constants.contains(global.getSymNameAttr()))
      return WalkResult::advance();
    FailureOr<RankedTensorType> type =
        staticTensorType(global, global.getType());
    if (failed(type))
      return WalkResult::interrupt();
    if (!source.contains(name)) {
      if (!global->hasAttr(mlir::moe::kTrainableAttrName))
        return WalkResult::advance();
      global.emitError() << "tensor '" << name << "' is missing from "
                         << source.getPath();
      return WalkResult::interrupt();
    }
    ref::DType dtype = *dtypeOf(type->getElementType());
    FailureOr<Placement> placement = placementOf(global);
    if (failed(placement))
      return WalkResult::interrupt();
    std::vector<int64_t> whole = placement->wholeShape();
    moert::OwnedTensor loaded;
    try {
      loaded = source.get(name, dtype);
    } catch (const moert::Error &error) {
      global.emitError() << error.what();
      return WalkResult::interrupt();
    }
    if (loaded.shape != whole) {
      global.emitError() << "tensor '" << name << "' in " << source.getPath()
                         << " is " << moert::formatShape(loaded.shape)
                         << ", but the model expects "
                         << moert::formatShape(whole);
      return WalkResult::interrupt();
    }
    globals[global.getSymName()] =
        runOf(Tensor::fromView(loaded.view(name)), placement->offset(),
              placement->runElements(), *type);
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  for (auto name = unused.begin(); name != unused.end();)
    name = moert::isIgnorableTensor(*name,
                                    [&](const std::string &global) {
                                      return module.lookupSymbol(global) !=
                                             nullptr;
                                    })
               ? unused.erase(name)
               : std::next(name);
  if (!unused.empty()) {
    module.emitError() << source.getPath() << ": tensor '" << *unused.begin()
                       << "' has no place in the model"
                       << (unused.size() > 1
                               ? " (nor " + std::to_string(unused.size() - 1) +
                                     " more)"
                               : "");
    return failure();
  }
  return success();
}

LogicalResult moe::Evaluator::upcycleGlobals(const moert::WeightSource &dense,
                                             uint64_t seed) {
  std::set<std::string> sources;
  int64_t rules = 0;
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    auto text = global->getAttrOfType<StringAttr>(kUpcycleAttrName);
    if (!text)
      return WalkResult::advance();
    ++rules;
    auto init = global->getAttrOfType<InitAttr>(kInitAttrName);
    FailureOr<RankedTensorType> type =
        staticTensorType(global, global.getType());
    FailureOr<Placement> placement = placementOf(global);
    if (!init || failed(type) || failed(placement)) {
      if (!init)
        global.emitError() << "an upcycled global needs a '" << kInitAttrName
                           << "' initializer";
      return WalkResult::interrupt();
    }
    std::vector<int64_t> whole = placement->wholeShape();
    std::string name = global.getSymName().str();
    try {
      moert::UpcycleRule rule =
          moert::parseUpcycleRule(text.getValue().str(), name);
      if (!rule.source.empty())
        sources.insert(rule.source);
      moert::OwnedTensor built = moert::upcycleTensor(
          rule, dense, name, whole, *dtypeOf(type->getElementType()), seed,
          init.getValue().convertToDouble());
      globals[global.getSymName()] =
          runOf(Tensor::fromView(built.view(name)), placement->offset(),
                placement->runElements(), *type);
    } catch (const moert::Error &error) {
      global.emitError() << error.what();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  if (rules == 0)
    return module.emitError("no global has a 'moe.upcycle' rule: a dense "
                            "checkpoint initializes a model that moe-upcycle "
                            "wrote (give this model's own weights with "
                            "--params)");
  try {
    moert::checkDenseTensorsUsed(dense, sources);
  } catch (const moert::Error &error) {
    return module.emitError() << error.what();
  }
  return success();
}

FailureOr<moe::ref::SubgroupCommunicator> moe::Evaluator::gridGroupOf(
    Operation *at,
    function_ref<SmallVector<int16_t>(ArrayRef<int64_t>)> axesOf) const {
  auto grids = ModuleOp(module).getOps<shard::GridOp>();
  if (grids.empty())
    return at->emitError() << "a global split over ranks needs the module's "
                              "shard.grid";
  std::vector<int64_t> shape = (*grids.begin()).getShape().vec();
  if (!communicator)
    return missingGroupError(at, "a global split over ranks", shape);
  SmallVector<int16_t> axes = axesOf(shape);
  try {
    return ref::SubgroupCommunicator(
        *communicator,
        moert::gridGroupMembers(shape, {axes.begin(), axes.end()},
                                communicator->rank()));
  } catch (const moert::Error &error) {
    return at->emitError() << error.what();
  }
}

FailureOr<moe::Evaluator::Placement>
moe::Evaluator::placementOf(ml_program::GlobalOp global) const {
  Placement placement;
  placement.rankTensor = cast<RankedTensorType>(global.getType());
  placement.globalElements = placement.rankTensor.getNumElements();
  if (auto of =
          global->getAttrOfType<FlatSymbolRefAttr>(kOptimizerPartAttrName)) {
    auto parameter =
        ModuleOp(module).lookupSymbol<ml_program::GlobalOp>(of.getAttr());
    if (!parameter)
      return global.emitError()
             << "'" << kOptimizerPartAttrName << "' names no global " << of;
    bool sharded = parameter->hasAttr(kShardedAttrName);
    FailureOr<ref::SubgroupCommunicator> parts =
        gridGroupOf(global, [&](ArrayRef<int64_t> shape) {
          return parameterCopyAxes(shape, sharded);
        });
    if (failed(parts))
      return failure();
    placement.rankTensor = cast<RankedTensorType>(parameter.getType());
    if (placement.globalElements !=
        llvm::divideCeilSigned(placement.rankTensor.getNumElements(),
                               parts->size()))
      return global.emitError()
             << "@" << global.getSymName() << " is not one of " << parts->size()
             << " equal parts of " << of << "'s " << placement.rankTensor
             << " (padded with zeros to a multiple of " << parts->size() << ")";
    placement.parts.emplace(*parts);
  }
  if (global->hasAttr(kShardedAttrName)) {
    FailureOr<ref::SubgroupCommunicator> experts =
        gridGroupOf(global, [](ArrayRef<int64_t> shape) {
          return SmallVector<int16_t>{expertGridAxis(shape)};
        });
    if (failed(experts))
      return failure();
    placement.experts.emplace(*experts);
  }
  return placement;
}

llvm::StringMap<Tensor> moe::Evaluator::wholeGlobals() const {
  llvm::StringMap<Tensor> whole = globals;
  // What a binary's checkpoint holds.
  llvm::DenseSet<StringAttr> constants =
      mlir::moe::configConstantGlobals(module);
  for (auto global : ModuleOp(module).getOps<ml_program::GlobalOp>()) {
    if (global->hasAttr(kTransientAttrName) ||
        constants.contains(global.getSymNameAttr())) {
      whole.erase(global.getSymName());
      continue;
    }
    FailureOr<Placement> placement = placementOf(global);
    if (failed(placement))
      moert::fail("cannot gather the global '{}'", global.getSymName().str());
    Tensor &tensor = whole[global.getSymName()];
    if (placement->parts) {
      tensor = ref::allGather(*placement->parts, tensor, 0);
      tensor.shape = shapeOf(placement->rankTensor);
      tensor.data.resize(placement->rankTensor.getNumElements());
    }
    if (placement->experts)
      tensor = ref::allGather(*placement->experts, tensor, 0);
  }
  return whole;
}

void moe::Evaluator::writeGlobals(const std::string &path,
                                  const llvm::StringMap<Tensor> &globals) {
  std::vector<std::pair<std::string, const Tensor *>> named;
  for (const auto &entry : globals)
    named.push_back({entry.getKey().str(), &entry.getValue()});
  llvm::sort(named, llvm::less_first());
  std::vector<std::vector<char>> storage;
  std::vector<moert::TensorView> views = ref::viewsOf(named, storage);
  // As a training binary's checkpoints: every reader refuses such a file.
  for (const moert::TensorView &view : views)
    moert::requireFiniteToWrite(path, view, "a file already there");
  moert::writeSafetensors(path, views);
}
