//===- KernelCalls.cpp - each moe op as its CPU kernel call ---------------===//
//
// The call of moert/CpuKernels.h that computes one op, given the pointers of
// its operands and results (CppEmitter::p) and the sizes of their static
// shapes. A 0-d operand is passed by value; a kernel that returns a scalar
// assigns it through its result's pointer.
//
//===----------------------------------------------------------------------===//

#include "CppEmitter.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::cpp;
using llvm::formatv;

std::string CppEmitter::kernelCall(Operation *op) {
  // Shorthands for the operand and result pointers and sizes.
  auto in = [&](unsigned i) { return p(op->getOperand(i)); };
  auto res = [&](unsigned i) { return p(op->getResult(i)); };
  auto dim = [&](Value v, int64_t axis) {
    ArrayRef<int64_t> shape = shapeOf(v);
    return shape[axis < 0 ? axis + shape.size() : axis];
  };
  auto gateConfig = [&](int64_t topK, FloatAttr lambda, APFloat eps,
                        bool renormalize) {
    return formatv("GateConfig{{{0}, {1}, {2}, {3}, {4}}", topK,
                   lambda ? "true" : "false",
                   literal(lambda ? lambda.getValueAsDouble() : 0.0),
                   literal(eps.convertToDouble()),
                   renormalize ? "true" : "false")
        .str();
  };
  auto auxKind = [](AuxLossKind kind) {
    return kind == AuxLossKind::skywork ? "AuxLossKind::Skywork"
                                        : "AuxLossKind::Switch";
  };
  return llvm::TypeSwitch<Operation *, std::string>(op)
      .Case([&](EmbeddingOp o) {
        return formatv("embedding({0}, {1}, {2}, {3}, {4}, {5})", in(0),
                       dim(o.getTable(), 0), dim(o.getTable(), 1), in(1),
                       numElements(o.getIds()), res(0))
            .str();
      })
      .Case([&](EmbeddingGradOp o) {
        return formatv("embeddingGrad({0}, {1}, {2}, {3}, {4}, {5})", in(0),
                       numElements(o.getIds()), in(1), dim(o.getDTable(), 0),
                       dim(o.getDTable(), 1), res(0))
            .str();
      })
      .Case([&](RmsNormOp o) {
        int64_t hidden = dim(o.getInput(), -1);
        return formatv("rmsNorm({0}, {1}, {2}, {3}, {4}, {5})", in(0), in(1),
                       numElements(o.getInput()) / hidden, hidden,
                       literal(o.getEps().convertToDouble()), res(0))
            .str();
      })
      .Case([&](RmsNormGradOp o) {
        int64_t hidden = dim(o.getInput(), -1);
        return formatv("rmsNormGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})",
                       in(0), in(1), in(2), numElements(o.getInput()) / hidden,
                       hidden, literal(o.getEps().convertToDouble()), res(0),
                       res(1))
            .str();
      })
      .Case<LinearOp, RouterOp>([&](auto o) {
        Value input = op->getOperand(0), weight = op->getOperand(1);
        int64_t inFeatures = dim(weight, 1), outFeatures = dim(weight, 0);
        return formatv("linear({0}, {1}, {2}, {3}, {4}, {5}, {6})", p(input),
                       p(weight),
                       op->getNumOperands() > 2 ? p(op->getOperand(2))
                                                : "nullptr",
                       numElements(input) / inFeatures, inFeatures, outFeatures,
                       res(0))
            .str();
      })
      .Case([&](LinearInputGradOp o) {
        int64_t inFeatures = dim(o.getWeight(), 1),
                outFeatures = dim(o.getWeight(), 0);
        return formatv("linearInputGrad({0}, {1}, {2}, {3}, {4}, {5})", in(0),
                       in(1), numElements(o.getDResult()) / outFeatures,
                       inFeatures, outFeatures, res(0))
            .str();
      })
      .Case([&](LinearWeightGradOp o) {
        int64_t inFeatures = dim(o.getDWeight(), 1),
                outFeatures = dim(o.getDWeight(), 0);
        return formatv("linearWeightGrad({0}, {1}, {2}, {3}, {4}, {5})", in(0),
                       in(1), numElements(o.getInput()) / inFeatures,
                       inFeatures, outFeatures, res(0))
            .str();
      })
      .Case([&](BiasGradOp o) {
        int64_t outFeatures = dim(o.getDBias(), 0);
        return formatv("biasGrad({0}, {1}, {2}, {3})", in(0),
                       numElements(o.getDResult()) / outFeatures, outFeatures,
                       res(0))
            .str();
      })
      .Case([&](RopeOp o) {
        Value x = o.getInput();
        return formatv("rope({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})", in(0),
                       dim(x, 0), dim(x, 1), dim(x, 2), dim(x, 3),
                       literal(o.getTheta().convertToDouble()),
                       o.getInverse() ? "true" : "false", res(0))
            .str();
      })
      .Case([&](AttentionOp o) {
        Value q = o.getQuery();
        return formatv("attention({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
                       "{8}, {9})",
                       in(0), in(1), in(2), dim(q, 0), dim(q, 1), dim(q, 2),
                       dim(o.getKey(), 2), dim(q, 3),
                       o.getCausal() ? "true" : "false", res(0))
            .str();
      })
      .Case([&](AttentionGradOp o) {
        Value q = o.getQuery();
        return formatv("attentionGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                       "{7}, {8}, {9}, {10}, {11}, {12})",
                       in(0), in(1), in(2), in(3), dim(q, 0), dim(q, 1),
                       dim(q, 2), dim(o.getKey(), 2), dim(q, 3),
                       o.getCausal() ? "true" : "false", res(0), res(1), res(2))
            .str();
      })
      .Case([&](SwigluOp o) {
        return formatv("swiglu({0}, {1}, {2}, {3})", in(0), in(1),
                       numElements(o.getGate()), res(0))
            .str();
      })
      .Case([&](SwigluGradOp o) {
        return formatv("swigluGrad({0}, {1}, {2}, {3}, {4}, {5})", in(0), in(1),
                       in(2), numElements(o.getGate()), res(0), res(1))
            .str();
      })
      .Case<AddOp, MulOp>([&](auto o) {
        return formatv("{0}({1}, {2}, {3}, {4})",
                       isa<AddOp>(op) ? "add" : "mul", in(0), in(1),
                       numElements(o.getLhs()), res(0))
            .str();
      })
      .Case([&](CrossEntropyOp o) {
        int64_t vocab = dim(o.getLogits(), -1);
        return formatv("*{0} = crossEntropy({1}, {2}, {3}, {4})", res(0), in(0),
                       in(1), numElements(o.getLogits()) / vocab, vocab)
            .str();
      })
      .Case([&](CrossEntropyGradOp o) {
        int64_t vocab = dim(o.getLogits(), -1);
        return formatv("crossEntropyGrad({0}, {1}, {2}, {3}, {4}, {5})", in(0),
                       in(1), numElements(o.getLogits()) / vocab, vocab,
                       s(o.getDLoss()), res(0))
            .str();
      })
      .Case([&](GateOp o) {
        Value logits = o.getLogits();
        return formatv("gate({0}, {1}, {2}, {3}, {4}, {5}, {6})", in(0),
                       dim(logits, 0), dim(logits, 1),
                       gateConfig(o.getTopK(), o.getNormLambdaAttr(),
                                  o.getNormEps(), o.getRenormalize()),
                       res(0), res(1), res(2))
            .str();
      })
      .Case([&](GateGradOp o) {
        Value logits = o.getLogits();
        return formatv("gateGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7})",
                       in(0), in(1), dim(logits, 0), dim(logits, 1),
                       gateConfig(dim(o.getIndices(), 1), o.getNormLambdaAttr(),
                                  o.getNormEps(), o.getRenormalize()),
                       in(2), in(3), res(0))
            .str();
      })
      .Case([&](GateNormOp o) {
        Value logits = o.getLogits();
        return formatv("gateNorm({0}, {1}, {2}, {3}, {4}, {5})", in(0),
                       dim(logits, 0), dim(logits, 1),
                       literal(o.getNormLambda().convertToDouble()),
                       literal(o.getNormEps().convertToDouble()), res(0))
            .str();
      })
      .Case([&](GateNormGradOp o) {
        Value logits = o.getLogits();
        return formatv("gateNormGrad({0}, {1}, {2}, {3}, {4}, {5}, {6})", in(0),
                       in(1), dim(logits, 0), dim(logits, 1),
                       literal(o.getNormLambda().convertToDouble()),
                       literal(o.getNormEps().convertToDouble()), res(0))
            .str();
      })
      .Case([&](DispatchOp o) {
        Value buffer = o.getBuffer();
        std::string counts = fresh("counts");
        out << "  int64_t " << counts << "[" << dim(buffer, 0) << "];\n";
        dispatchCounts[buffer] = counts;
        return formatv("dispatch({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
                       "{8}, {9}, {10}, {11})",
                       in(0), in(1),
                       o.getPriority() ? p(o.getPriority()) : "nullptr",
                       dim(o.getTokens(), 0), dim(o.getTokens(), 1),
                       dim(o.getIndices(), 1), dim(buffer, 0), dim(buffer, 1),
                       res(0), res(1), counts, res(2))
            .str();
      })
      .Case([&](DispatchGradOp o) {
        Value buffer = o.getDBuffer();
        return formatv("dispatchGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                       "{7}, {8})",
                       in(0), in(1), in(2), dim(o.getIndices(), 0),
                       dim(buffer, 2), dim(o.getIndices(), 1), dim(buffer, 0),
                       dim(buffer, 1), res(0))
            .str();
      })
      .Case([&](ExpertFfnOp o) {
        Value x = o.getInput();
        return formatv("expertFfn({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
                       "{8}, {9}, {10})",
                       in(0), in(1), in(2), in(3), rowCounts(x), dim(x, 0),
                       dim(x, 1), dim(x, 2), dim(o.getGateProj(), 1), res(0),
                       res(1))
            .str();
      })
      .Case([&](ExpertFfnGradOp o) {
        Value x = o.getInput();
        return formatv("expertFfnGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                       "{7}, {8}, {9}, {10}, {11}, {12}, {13}, {14})",
                       in(0), in(1), in(2), in(3), in(4), in(5), rowCounts(x),
                       dim(x, 0), dim(x, 1), dim(x, 2), dim(o.getGateProj(), 1),
                       res(0), res(1), res(2), res(3))
            .str();
      })
      .Case([&](CombineOp o) {
        Value buffer = o.getExpertOutput();
        return formatv("combine({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
                       "{8}, {9})",
                       in(0), in(1), in(2), in(3), dim(o.getWeights(), 0),
                       dim(o.getWeights(), 1), dim(buffer, 0), dim(buffer, 1),
                       dim(buffer, 2), res(0))
            .str();
      })
      .Case([&](CombineGradOp o) {
        Value buffer = o.getExpertOutput();
        return formatv("combineGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                       "{7}, {8}, {9}, {10}, {11})",
                       in(0), in(1), in(2), in(3), in(4),
                       dim(o.getWeights(), 0), dim(o.getWeights(), 1),
                       dim(buffer, 0), dim(buffer, 1), dim(buffer, 2), res(0),
                       res(1))
            .str();
      })
      .Case([&](AuxLossOp o) {
        return formatv("*{0} = auxLoss({1}, {2}, {3}, {4}, {5}, {6})", res(0),
                       auxKind(o.getKind()), in(0), in(1), dim(o.getProbs(), 0),
                       dim(o.getProbs(), 1), dim(o.getIndices(), 1))
            .str();
      })
      .Case([&](AuxLossGradOp o) {
        return formatv("auxLossGrad({0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                       "{7})",
                       auxKind(o.getKind()), in(0), in(1), dim(o.getProbs(), 0),
                       dim(o.getProbs(), 1), dim(o.getIndices(), 1),
                       s(o.getDLoss()), res(0))
            .str();
      })
      .Case([&](ZLossOp o) {
        return formatv("*{0} = zLoss({1}, {2}, {3})", res(0), in(0),
                       dim(o.getLogits(), 0), dim(o.getLogits(), 1))
            .str();
      })
      .Case([&](ZLossGradOp o) {
        return formatv("zLossGrad({0}, {1}, {2}, {3}, {4})", in(0),
                       dim(o.getLogits(), 0), dim(o.getLogits(), 1),
                       s(o.getDLoss()), res(0))
            .str();
      })
      .Case([&](RoutingMetricsOp o) {
        Value probs = o.getProbs();
        return formatv("routingMetrics({0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                       "{7}, {8}, {9})",
                       in(0), in(1), in(2), dim(probs, 0), dim(probs, 1),
                       dim(o.getIndices(), 1), res(0), res(1), res(2), res(3))
            .str();
      })
      .Case([&](ExpertSimilarityOp o) {
        Value gateProj = o.getGateProj();
        return formatv("*{0} = expertSimilarity({1}, {2}, {3}, {4}, {5}, "
                       "{6})",
                       res(0), in(0), in(1), in(2), dim(gateProj, 0),
                       dim(gateProj, 1), dim(gateProj, 2))
            .str();
      })
      .Case([&](AdaptiveAuxCoeffOp o) {
        return formatv("*{0} = float({1} * {2} + (1 - {1}) * std::min({3} "
                       "* double({4}) / {5}, {6}))",
                       res(0), literal(o.getBeta().convertToDouble()),
                       s(o.getAlpha()), literal(o.getXi().convertToDouble()),
                       s(o.getDropped()), o.getAssignments(),
                       literal(o.getAlphaMax().convertToDouble()))
            .str();
      })
      .Case([&](LrScheduleOp o) {
        return formatv("*{0} = lrSchedule({1}, {2}, {3}, {4}, {5})", res(0),
                       s(o.getStep()), literal(o.getMaxLr().convertToDouble()),
                       literal(o.getMinLr().convertToDouble()),
                       o.getWarmupStepsAttr().getInt(),
                       o.getDecayStepsAttr().getInt())
            .str();
      })
      .Case([&](GlobalNormOp o) {
        std::string tensors = fresh("tensors"), sizes = fresh("sizes");
        out << "  const float *" << tensors << "[] = {";
        llvm::interleaveComma(o.getTensors(), out,
                              [&](Value v) { out << p(v); });
        out << "};\n  const int64_t " << sizes << "[] = {";
        llvm::interleaveComma(o.getTensors(), out,
                              [&](Value v) { out << numElements(v); });
        out << "};\n";
        return formatv("*{0} = globalNorm({1}, {2}, {3})", res(0), tensors,
                       sizes, o.getTensors().size())
            .str();
      })
      .Case([&](AdamWOp o) {
        return formatv("adamw({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
                       "AdamWConfig{{{8}, {9}, {10}, {11}, {12}}, {13}, "
                       "{14}, {15})",
                       in(0), in(1), in(2), in(3), numElements(o.getParam()),
                       s(o.getLr()), s(o.getGradNorm()), s(o.getStep()),
                       literal(o.getBeta1().convertToDouble()),
                       literal(o.getBeta2().convertToDouble()),
                       literal(o.getEps().convertToDouble()),
                       literal(o.getWeightDecay().convertToDouble()),
                       literal(o.getMaxGradNorm().convertToDouble()), res(0),
                       res(1), res(2))
            .str();
      })
      .Case([&](FusedElementwiseOp o) { return fusedLoop(o); })
      .Case([&](arith::AddIOp o) {
        return formatv("for (int64_t i = 0; i < {0}; ++i)\n    {1}[i] = "
                       "{2}[i] + {3}[i]",
                       numElements(o.getLhs()), res(0), in(0), in(1))
            .str();
      })
      .Default([&](Operation *) { return std::string(); });
}
