//===- OpCost.cpp - per-op flops, bytes and collective payloads -----------===//
//
// GEMM flops are exact (2 * m * n * k per product). Attention counts its two
// matrix products over the whole score matrix, causal or not, the convention
// of Megatron's and PaLM's model-FLOP counts, so that utilization figures
// compare with theirs. Everything else is bandwidth-bound; its flops are
// per-element estimates that only matter for reporting.
//
//===----------------------------------------------------------------------===//

#include "moe/Analysis/OpCost.h"

#include "moe/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

double mlir::moe::attentionScoreFraction(moert::AttentionMask mask,
                                         int64_t seq) {
  if (!mask.causal)
    return 1;
  double window = mask.window ? std::min(mask.window, seq) : seq;
  return (window * seq - window * window / 2) / (double(seq) * seq);
}

double mlir::moe::tensorBytes(Type type) {
  auto shaped = dyn_cast<RankedTensorType>(type);
  if (!shaped || !shaped.hasStaticShape())
    return 0;
  Type element = shaped.getElementType();
  if (!element.isIntOrFloat())
    return 0;
  unsigned bytes = (element.getIntOrFloatBitWidth() + 7) / 8;
  return static_cast<double>(shaped.getNumElements()) * bytes;
}

namespace {

double numElements(Value value) {
  auto shaped = dyn_cast<ShapedType>(value.getType());
  return shaped && shaped.hasStaticShape()
             ? static_cast<double>(shaped.getNumElements())
             : 0;
}

int64_t dim(Value value, int64_t index) {
  ArrayRef<int64_t> shape = cast<ShapedType>(value.getType()).getShape();
  return shape[index < 0 ? shape.size() + index : index];
}

double filledBytes(Value value, const QueueFill &fill) {
  return tensorBytes(value.getType()) * fill.of(value);
}

double trafficBytes(Operation *op, const QueueFill &fill) {
  double bytes = 0;
  for (Value operand : op->getOperands())
    bytes += filledBytes(operand, fill);
  for (Value result : op->getResults())
    bytes += filledBytes(result, fill);
  return bytes;
}

/// A bandwidth-bound op with `flopsPerElement` times the filled elements of
/// `value`.
OpCost memoryCost(Operation *op, const QueueFill &fill, double flopsPerElement,
                  Value value) {
  OpCost cost;
  cost.kind = OpCost::Kind::Memory;
  cost.flops = flopsPerElement * numElements(value) * fill.of(value);
  cost.bytes = trafficBytes(op, fill);
  return cost;
}

/// `products` GEMMs of m x k by k x n.
OpCost gemmCost(Operation *op, const QueueFill &fill, int64_t m, int64_t n,
                int64_t k, int64_t products) {
  OpCost cost;
  cost.kind = OpCost::Kind::Gemm;
  cost.m = m;
  cost.n = n;
  cost.k = k;
  cost.products = products;
  cost.flops = 2.0 * m * n * k * products;
  cost.bytes = trafficBytes(op, fill);
  return cost;
}

/// Score and value products of every head: 2 * 2 * s_q * s_k * d each.
double attentionFlops(Value query, Value key) {
  // [batch, seq, heads, head_dim]
  return 4.0 * dim(query, 0) * dim(query, 2) * dim(query, 1) * dim(key, 1) *
         dim(query, 3);
}

template <typename CollectiveOp>
OpCost collectiveCost(CollectiveOp op, double payload) {
  SymbolTableCollection symbols;
  OpCost cost;
  cost.kind = OpCost::Kind::Collective;
  cost.bytes = payload;
  cost.collective = op->getName().stripDialect();
  shard::GridOp grid = shard::getGrid(op, symbols);
  cost.groupSize =
      grid ? shard::collectiveProcessGroupSize(op.getGridAxes(), grid) : 1;
  return cost;
}

} // namespace

mlir::moe::QueueFill::QueueFill(Block &body) {
  // Fills start where tokens are placed (moe.dispatch, moe.place) and follow
  // the queues and runs through exchanges, merges, experts and gradients.
  // A layer's routed assignments and run fill, for the merges and splits
  // of expert parallelism (which the backward repeats).
  llvm::DenseMap<Attribute, double> assignments, runFill;
  auto set = [&](Value value, double filledRows) {
    int64_t rows = rowsOf(value);
    fills[value] = rows > 0 ? std::min(1.0, filledRows / rows) : 1.0;
  };
  auto copy = [&](Value to, Value from) { fills[to] = of(from); };
  for (Operation &op : body) {
    Attribute layer = op.getAttr(kLayerAttrName);
    llvm::TypeSwitch<Operation *>(&op)
        .Case([&](DispatchOp op) {
          set(op.getBuffer(), numElements(op.getIndices()));
        })
        .Case([&](PlaceOp op) {
          assignments[layer] = numElements(op.getIndices());
          set(op.getBuffer(), assignments[layer]);
          runFill[layer] = of(op.getBuffer());
        })
        // The local experts' queues get every rank's runs for them: under
        // balanced routing as many rows as this rank assigns.
        .Case([&](MergeRunsOp op) {
          if (assignments.count(layer))
            set(op.getQueue(), assignments[layer]);
        })
        .Case([&](SplitRunsOp op) {
          if (runFill.count(layer))
            fills[op.getRuns()] = runFill[layer];
        })
        .Case(
            [&](shard::AllToAllOp op) { copy(op.getResult(), op.getInput()); })
        // bf16's conversions of a queue or run (mixed precision).
        .Case<arith::TruncFOp, arith::ExtFOp>([&](Operation *convert) {
          copy(convert->getResult(0), convert->getOperand(0));
        })
        .Case([&](ExpertFfnOp op) {
          copy(op.getResult(), op.getInput());
          copy(op.getProjections(), op.getInput());
        })
        .Case([&](ExpertFfnGradOp op) { copy(op.getDInput(), op.getInput()); })
        .Case([&](CombineGradOp op) {
          copy(op.getDExpertOutput(), op.getExpertOutput());
        })
        // Gradients of a queue used twice add up.
        .Case([&](AddOp op) {
          if (of(op.getLhs()) == of(op.getRhs()))
            copy(op.getResult(), op.getLhs());
        });
  }
}

double mlir::moe::QueueFill::of(Value value) const {
  auto found = fills.find(value);
  return found == fills.end() ? 1 : found->second;
}

FailureOr<OpCost> mlir::moe::getOpCost(Operation *op, const QueueFill &fill) {
  using Kind = OpCost::Kind;
  auto memory = [&](double flopsPerElement, Value value) {
    return memoryCost(op, fill, flopsPerElement, value);
  };
  auto gemm = [&](int64_t m, int64_t n, int64_t k, int64_t products) {
    return gemmCost(op, fill, m, n, k, products);
  };
  auto attention = [&](Value query, Value key, moert::AttentionMask mask,
                       double passes) {
    OpCost cost;
    cost.kind = Kind::Attention;
    cost.flops = passes * attentionFlops(query, key);
    cost.scoreFraction = attentionScoreFraction(mask, dim(query, 1));
    cost.bytes = trafficBytes(op, fill);
    return cost;
  };
  // Gate, up and down projections of every expert's filled rows; the
  // backward does each product twice (input and weight gradients).
  auto experts = [&](Value queue, Value gateProj, int64_t passes) {
    int64_t rows = std::llround(dim(queue, 1) * fill.of(queue));
    return gemm(rows, dim(gateProj, 1), dim(queue, 2), passes * dim(queue, 0));
  };
  std::optional<OpCost> cost =
      llvm::TypeSwitch<Operation *, std::optional<OpCost>>(op)
          // No kernel: views, symbols, constants, control.
          .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp,
                tensor::ExtractSliceOp, ml_program::GlobalLoadOp,
                ml_program::GlobalStoreOp, ml_program::GlobalOp,
                arith::ConstantOp, arith::AddIOp, func::ReturnOp, shard::GridOp,
                shard::AllSliceOp, YieldOp, LrScheduleOp>(
              [](Operation *) { return OpCost(); })
          .Case([&](LinearOp op) {
            int64_t k = dim(op.getInput(), -1), n = dim(op.getWeight(), 0);
            return gemm(rowsOf(op.getInput()), n, k, 1);
          })
          .Case([&](LinearInputGradOp op) {
            int64_t n = dim(op.getWeight(), 0), k = dim(op.getWeight(), 1);
            return gemm(rowsOf(op.getDResult()), k, n, 1);
          })
          .Case([&](LinearWeightGradOp op) {
            int64_t n = dim(op.getDResult(), -1), k = dim(op.getInput(), -1);
            return gemm(n, k, rowsOf(op.getDResult()), 1);
          })
          .Case([&](RouterOp op) {
            int64_t h = dim(op.getTokens(), -1), e = dim(op.getWeight(), 0);
            return gemm(rowsOf(op.getTokens()), e, h, 1);
          })
          .Case([&](ExpertFfnOp op) {
            return experts(op.getInput(), op.getGateProj(), 3);
          })
          .Case([&](ExpertFfnGradOp op) {
            return experts(op.getInput(), op.getGateProj(), 6);
          })
          .Case([&](AttentionOp op) {
            return attention(op.getQuery(), op.getKey(), attentionMask(op), 1);
          })
          // The gradients of both products: twice the forward's flops.
          .Case([&](AttentionGradOp op) {
            return attention(op.getQuery(), op.getKey(), attentionMask(op), 2);
          })
          .Case([&](shard::AllToAllOp op) {
            return collectiveCost(op, filledBytes(op.getInput(), fill));
          })
          .Case([&](shard::AllGatherOp op) {
            return collectiveCost(op, filledBytes(op.getResult(), fill));
          })
          .Case([&](shard::AllReduceOp op) {
            return collectiveCost(op, filledBytes(op.getInput(), fill));
          })
          .Case([&](shard::ReduceScatterOp op) {
            return collectiveCost(op, filledBytes(op.getInput(), fill));
          })
          // Bandwidth-bound ops, with rough flops per element.
          .Case<AddOp, MulOp, ScaleOp, SliceOp, PadOp, ConcatOp, EmbeddingOp,
                EmbeddingGradOp, BiasGradOp, PlaceOp, MergeRunsOp, SplitRunsOp,
                DispatchOp, DispatchGradOp, RouteOp, RoutingMetricsOp,
                CombineOp, CombineGradOp, arith::TruncFOp, arith::ExtFOp>(
              [&](Operation *op) { return memory(1, op->getResult(0)); })
          .Case([&](ConcatGradOp op) { return memory(1, op.getDResult()); })
          // A dot product a row of d_result and output.
          .Case([&](AttentionSinksGradOp op) {
            return memory(2, op.getDResult());
          })
          .Case([&](CountTargetsOp op) { return memory(1, op.getTargets()); })
          .Case([&](ExpertLoadOp op) { return memory(1, op.getIndices()); })
          // A copy and a fill.
          .Case([&](tensor::PadOp op) { return memory(0, op.getResult()); })
          .Case<RmsNormOp, RopeOp, SwigluOp, SigmoidScaleOp>(
              [&](Operation *op) { return memory(4, op->getResult(0)); })
          .Case<RmsNormGradOp, SwigluGradOp, SigmoidScaleGradOp>(
              [&](Operation *op) { return memory(8, op->getOperand(0)); })
          .Case<CrossEntropyOp, CrossEntropyGradOp, GateOp, GateGradOp,
                GateNormOp, GateNormGradOp, AuxLossOp, AuxLossGradOp, ZLossOp,
                ZLossGradOp>(
              [&](Operation *op) { return memory(5, op->getOperand(0)); })
          .Case<AdaptiveAuxCoeffOp, ExpertBiasUpdateOp, ExpertSimilarityOp,
                GlobalNormOp, FusedElementwiseOp, PooledAuxLossOp,
                PooledAuxLossGradOp>([&](Operation *op) {
            // No flops per element here (the operands count them
            // below), so any value serves; a fused fill has no operand.
            OpCost cost = memory(0, op->getResult(0));
            for (Value operand : op->getOperands())
              cost.flops += 2 * numElements(operand);
            return cost;
          })
          .Case([&](AdamWOp op) { return memory(12, op.getParam()); })
          .Default([](Operation *) { return std::nullopt; });
  if (!cost)
    return op->emitError("the cost model has no formula for '")
           << op->getName() << "'";
  return *cost;
}
