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

#include <new>
#include <set>

using namespace mlir;
using namespace mlir::moe::evaluator;

namespace {

/// The whole tensor of which a sharded global is part `shard.index` of
/// `shard.size` equal parts along axis 0, and that part of it (a scalar is
/// its only part).
std::vector<int64_t> wholeShape(RankedTensorType part,
                                const moert::GridGroup &shard) {
  std::vector<int64_t> shape = shapeOf(part);
  if (shard.size > 1)
    shape[0] *= shard.size;
  return shape;
}

Tensor partOf(Tensor whole, const moert::GridGroup &shard) {
  return shard.size == 1 ? std::move(whole)
                         : moe::ref::split(whole, 0, shard.size)[shard.index];
}

} // namespace

LogicalResult
moe::Evaluator::initializeGlobals(uint64_t seed,
                                  const moert::WeightSource *provided) {
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    if (provided && provided->contains(global.getSymName().str()))
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
    FailureOr<moert::GridGroup> shard = shardOf(global);
    if (failed(shard))
      return WalkResult::interrupt();
    // A part along axis 0 is a contiguous run of the whole tensor.
    int64_t offset = shard->index * tensor.numel();
    uint64_t key = moert::streamKey(seed, global.getSymName().str());
    double value = init.getValue().convertToDouble();
    for (int64_t i = 0; i < tensor.numel(); ++i)
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
  WalkResult walk = module.walk([&](ml_program::GlobalOp global) {
    std::string name = global.getSymName().str();
    unused.erase(name);
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
    FailureOr<moert::GridGroup> shard = shardOf(global);
    if (failed(shard))
      return WalkResult::interrupt();
    std::vector<int64_t> whole = wholeShape(*type, *shard);
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
    Tensor tensor = Tensor::fromView(loaded.view(name));
    globals[global.getSymName()] = partOf(std::move(tensor), *shard);
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
    FailureOr<moert::GridGroup> shard = shardOf(global);
    if (!init || failed(type) || failed(shard)) {
      if (!init)
        global.emitError() << "an upcycled global needs a '" << kInitAttrName
                           << "' initializer";
      return WalkResult::interrupt();
    }
    std::vector<int64_t> whole = wholeShape(*type, *shard);
    std::string name = global.getSymName().str();
    try {
      moert::UpcycleRule rule =
          moert::parseUpcycleRule(text.getValue().str(), name);
      if (!rule.source.empty())
        sources.insert(rule.source);
      moert::OwnedTensor built = moert::upcycleTensor(
          rule, dense, name, whole, *dtypeOf(type->getElementType()), seed,
          init.getValue().convertToDouble());
      Tensor tensor = Tensor::fromView(built.view(name));
      globals[global.getSymName()] = partOf(std::move(tensor), *shard);
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

FailureOr<moe::ref::SubgroupCommunicator>
moe::Evaluator::expertGroup(Operation *at) const {
  if (!communicator)
    return at->emitError() << "a sharded global needs the ranks of its "
                              "SPMD group (moe-run --ranks)";
  auto grids = ModuleOp(module).getOps<shard::GridOp>();
  if (grids.empty())
    return at->emitError() << "a sharded global needs the module's "
                              "shard.grid";
  std::vector<int64_t> shape = (*grids.begin()).getShape().vec();
  try {
    return ref::SubgroupCommunicator(
        *communicator, moert::gridGroupMembers(shape, {expertGridAxis(shape)},
                                               communicator->rank()));
  } catch (const moert::Error &error) {
    return at->emitError() << error.what();
  }
}

FailureOr<moert::GridGroup>
moe::Evaluator::shardOf(ml_program::GlobalOp global) const {
  if (!global->hasAttr(kShardedAttrName))
    return moert::GridGroup();
  FailureOr<ref::SubgroupCommunicator> group = expertGroup(global);
  if (failed(group))
    return failure();
  moert::GridGroup shard;
  shard.index = group->rank();
  shard.size = group->size();
  return shard;
}

llvm::StringMap<Tensor> moe::Evaluator::wholeGlobals() const {
  llvm::StringMap<Tensor> whole = globals;
  for (auto global : ModuleOp(module).getOps<ml_program::GlobalOp>()) {
    if (global->hasAttr(kTransientAttrName)) {
      whole.erase(global.getSymName());
    } else if (global->hasAttr(kShardedAttrName)) {
      FailureOr<ref::SubgroupCommunicator> group = expertGroup(global);
      if (failed(group))
        moert::fail("cannot gather the sharded global '{}'",
                    global.getSymName().str());
      whole[global.getSymName()] =
          ref::allGather(*group, globals.lookup(global.getSymName()), 0);
    }
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
  moert::writeSafetensors(path, views);
}
