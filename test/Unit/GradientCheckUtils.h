//===- GradientCheckUtils.h - modules for gradient checks ------*- C++ -*-===//
//
// What the gradient checks of every differentiable op share: a Model draws
// a small f64 module (every float input a trainable global loaded in
// @forward, every integer input an arith.constant), and checkCase runs
// mlir::moe::checkGradients on it under several seeds: moe-autodiff's
// vector-Jacobian product with a random cotangent against central finite
// differences evaluated by the reference interpreter. A failure prints the
// op, the seed and the whole module.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_GRADIENTCHECKUTILS_H
#define MOE_TEST_UNIT_GRADIENTCHECKUTILS_H

#include "moe/InitAllDialects.h"
#include "moe/Interpreter/Evaluator.h"
#include "moe/Interpreter/GradientCheck.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace gradcheck {

using Shape = std::vector<int64_t>;

constexpr double kTolerance = 1e-6;
constexpr double kStep = 1e-4; // checkGradients' default
/// Seeds every case runs under; each draws its own shapes and values.
constexpr uint64_t kSeeds[] = {1, 2, 3, 4};
/// Guards for the cases with a gate, checked on the gate's logits before the
/// gradients (see wellConditionedGate); a draw that fails them is replaced by
/// a new draw, and the replacement is logged.
///
/// Ties: a finite-difference step moves the normalized logits z~ by about
/// step * |d z / d parameter| * norm_lambda / std(z) (a few 1e-4 here). If
/// two of a token's k + 1 largest z~ were closer than that, the perturbed
/// run could choose other experts or order them differently, and the
/// differences would measure a jump, not a derivative.
constexpr double kMinGateGap = 1e-2;
/// Conditioning: with norm_lambda, z~ = lambda (z - mean) / std(z) bends
/// sharply when a row's std is small; the central differences' truncation
/// error grows like (step / std)^2 and passes 1e-6 for std ~ 0.1 (seen over
/// 200 seeds; it falls exactly as step^2, so the gradient itself is right).
/// The same holds for two experts, where z~ = +-lambda whatever z is, so the
/// gate cases with norm_lambda draw at least three experts.
constexpr double kMinLogitStd = 0.3;

inline std::string typeOf(const Shape &shape, const char *element = "f64") {
  std::string text = "tensor<";
  for (int64_t dim : shape)
    text += std::to_string(dim) + "x";
  return text + element + ">";
}
inline std::string i32(const Shape &shape) { return typeOf(shape, "i32"); }

inline std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6e", value);
  return buffer;
}

inline int64_t product(const Shape &shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

/// `[[a, b], [c, d]]` for a dense attribute of `shape` (row-major values).
inline std::string denseList(const Shape &shape,
                             const std::vector<int64_t> &values,
                             size_t axis = 0, int64_t offset = 0) {
  if (axis == shape.size())
    return std::to_string(values[offset]);
  int64_t stride = product(Shape(shape.begin() + axis + 1, shape.end()));
  std::string text = "[";
  for (int64_t i = 0; i < shape[axis]; ++i)
    text += (i ? ", " : "") +
            denseList(shape, values, axis + 1, offset + i * stride);
  return text + "]";
}

/// The text of one module under construction, with the random source its
/// shapes and integer inputs are drawn from.
class Model {
public:
  explicit Model(uint64_t seed) : rng(seed) {}

  int64_t dim(int64_t lo = 1, int64_t hi = 6) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }
  bool coin() { return dim(0, 1) == 1; }
  template <typename T> T pick(std::initializer_list<T> choices) {
    return choices.begin()[dim(0, static_cast<int64_t>(choices.size()) - 1)];
  }
  /// A random shape of rank lo..hi with dims 1..maxDim.
  Shape shape(int64_t lo, int64_t hi, int64_t maxDim = 4) {
    Shape result(dim(lo, hi));
    for (int64_t &d : result)
      d = dim(1, maxDim);
    return result;
  }

  /// A trainable f64 global `@name` of `shape`, loaded as `%name`.
  std::string param(const std::string &name, const Shape &shape,
                    double stddev = 1.0) {
    return global(name, shape, "normal, " + number(stddev), ", moe.trainable");
  }
  /// A non-trainable f64 global (training state) of constant value.
  std::string state(const std::string &name, const Shape &shape, double value) {
    return global(name, shape, "constant, " + number(value), "");
  }
  std::string global(const std::string &name, const Shape &shape,
                     const std::string &init, const std::string &trainable) {
    globals += "ml_program.global private mutable @" + name + " : " +
               typeOf(shape) + " {moe.init = #moe.init<" + init + ">" +
               trainable + "}\n";
    emit("%" + name + " = ml_program.global_load @" + name + " : " +
         typeOf(shape));
    return "%" + name;
  }
  /// An integer constant `%name` of `shape` with the given row-major
  /// values: i32 (ids, choices, slots) or i64 (counts).
  std::string ints(const std::string &name, const Shape &shape,
                   const std::vector<int64_t> &values,
                   const char *element = "i32") {
    emit("%" + name + " = arith.constant dense<" + denseList(shape, values) +
         "> : " + typeOf(shape, element));
    return "%" + name;
  }
  /// An i32 constant of values drawn uniformly from [0, bound).
  std::string ids(const std::string &name, const Shape &shape, int64_t bound) {
    std::vector<int64_t> values(product(shape));
    for (int64_t &v : values)
      v = dim(0, bound - 1);
    return ints(name, shape, values);
  }
  /// Row-major [tokens, k] expert choices, distinct within a token.
  std::vector<int64_t> choices(int64_t tokens, int64_t k, int64_t experts) {
    std::vector<int64_t> result;
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<int64_t> order(experts);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      result.insert(result.end(), order.begin(), order.begin() + k);
    }
    return result;
  }

  void emit(const std::string &line) { body += "  " + line + "\n"; }
  void result(const std::string &value, const Shape &shape) {
    output = value;
    outputType = typeOf(shape);
  }
  /// Declares the logits ([T, E]) of a gate with top `k` and `lambda`
  /// (0: no normalization). A second function @probe returns them so that
  /// the test can refuse ill-conditioned draws (wellConditionedGate).
  void probe(const std::string &logits, int64_t tokens, int64_t experts,
             int64_t k, double lambda) {
    probeValue = logits;
    probeShape = {tokens, experts};
    probeK = k;
    probeLambda = lambda;
  }

  std::string text() const {
    std::string module = globals + "func.func @forward() -> " + outputType +
                         " {\n" + body + "  return " + output + " : " +
                         outputType + "\n}\n";
    if (!probeValue.empty())
      module += "func.func @probe() -> " + typeOf(probeShape) + " {\n" + body +
                "  return " + probeValue + " : " + typeOf(probeShape) + "\n}\n";
    if (expectedDrops >= 0)
      module += "func.func @dropped() -> tensor<i64> {\n" + body +
                "  return %dropped : tensor<i64>\n}\n";
    return module;
  }

  std::mt19937_64 rng;
  std::string probeValue;
  Shape probeShape;
  int64_t probeK = 0;
  double probeLambda = 0;
  /// When set, a second function @dropped returns %dropped, which must equal
  /// this count (what the test expects from moe.dispatch's semantics).
  int64_t expectedDrops = -1;

private:
  std::string globals, body, output, outputType;
};

using Build = std::function<void(Model &)>;

/// Whether a gate's draw is well-conditioned, from its logits [T, E]: in
/// every row, neighbouring values among the k + 1 largest normalized logits
/// z~ (z itself without norm_lambda) differ by at least kMinGateGap, and with
/// norm_lambda the row's population std is at least kMinLogitStd.
inline bool wellConditionedGate(const mlir::moe::ref::Tensor &logits, int64_t k,
                                double lambda) {
  int64_t experts = logits.shape[1];
  for (int64_t t = 0; t < logits.shape[0]; ++t) {
    std::vector<double> row(logits.data.begin() + t * experts,
                            logits.data.begin() + (t + 1) * experts);
    double mean = std::accumulate(row.begin(), row.end(), 0.0) / experts;
    double var = 0;
    for (double z : row)
      var += (z - mean) * (z - mean) / experts;
    double deviation = std::sqrt(var);
    if (lambda > 0 && deviation < kMinLogitStd)
      return false;
    for (double &z : row)
      z = lambda > 0 ? lambda * (z - mean) / deviation : z;
    std::sort(row.rbegin(), row.rend());
    for (int64_t j = 0; j + 1 < std::min(k + 1, experts); ++j)
      if (row[j] - row[j + 1] < kMinGateGap)
        return false;
  }
  return true;
}

enum class Draw { Checked, IllConditioned };

/// Checks the gradients of one drawn module under `seed` (which also seeds
/// the globals' initializers and the cotangent). Returns IllConditioned,
/// having checked nothing, when the module's gate fails the guards of
/// wellConditionedGate.
inline Draw checkDraw(const std::string &label, const Model &model,
                      uint64_t seed, double step, double &worst) {
  mlir::DialectRegistry registry;
  mlir::moe::registerAllDialects(registry);
  mlir::MLIRContext context(registry, mlir::MLIRContext::Threading::DISABLED);
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(
      &context, [&](mlir::Diagnostic &diagnostic) {
        diagnostics += diagnostic.str() + "\n";
        return mlir::success();
      });
  std::string text = model.text();
  std::string where = label + ", seed " + std::to_string(seed) + ":\n" + text;

  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  if (!module) {
    ADD_FAILURE() << "parse failed: " << diagnostics << where;
    return Draw::Checked;
  }
  mlir::moe::Evaluator evaluator(*module);
  if (mlir::failed(evaluator.initializeGlobals(seed))) {
    ADD_FAILURE() << "initialization failed: " << diagnostics << where;
    return Draw::Checked;
  }
  if (auto probe = module->lookupSymbol<mlir::func::FuncOp>("probe")) {
    mlir::FailureOr<std::vector<mlir::moe::ref::Tensor>> logits =
        evaluator.run(probe, {});
    if (mlir::failed(logits)) {
      ADD_FAILURE() << "probe failed: " << diagnostics << where;
      return Draw::Checked;
    }
    if (!wellConditionedGate((*logits)[0], model.probeK, model.probeLambda))
      return Draw::IllConditioned;
  }

  if (auto dropped = module->lookupSymbol<mlir::func::FuncOp>("dropped")) {
    mlir::FailureOr<std::vector<mlir::moe::ref::Tensor>> count =
        evaluator.run(dropped, {});
    if (mlir::failed(count))
      ADD_FAILURE() << "@dropped failed: " << diagnostics << where;
    else
      EXPECT_EQ((*count)[0].data[0], model.expectedDrops) << where;
  }

  mlir::moe::GradientCheckOptions options;
  options.function = "forward";
  options.seed = seed;
  options.samplesPerTensor = 1 << 20; // every element
  options.step = step;
  mlir::FailureOr<std::vector<mlir::moe::TensorGradientCheck>> checks =
      mlir::moe::checkGradients(*module, evaluator, {}, options);
  if (mlir::failed(checks)) {
    ADD_FAILURE() << "checkGradients failed: " << diagnostics << where;
    return Draw::Checked;
  }
  EXPECT_FALSE(checks->empty()) << where;
  for (const mlir::moe::TensorGradientCheck &check : *checks) {
    worst = std::max(worst, check.relativeError);
    if (step == kStep) {
      EXPECT_LT(check.relativeError, kTolerance)
          << "gradient of @" << check.global << " in " << where;
      EXPECT_EQ(check.checkedElements,
                evaluator.getGlobal(check.global).numel())
          << check.global << " in " << where;
    }
  }
  return Draw::Checked;
}

/// Runs `build` under every seed of kSeeds (each seed draws new shapes and
/// new values), expecting every relative error below kTolerance when `step`
/// is kStep, and prints the worst. Returns the worst error of each seed. An
/// ill-conditioned draw (a gate near a tie or with a flat row of logits) is
/// replaced by another one, at most 20 times.
inline std::vector<double> checkCase(const std::string &label,
                                     const Build &build, double step = kStep) {
  std::vector<double> worstPerSeed;
  for (uint64_t seed : kSeeds) {
    double worst = 0;
    bool checked = false;
    for (uint64_t attempt = 0; attempt < 20 && !checked; ++attempt) {
      uint64_t drawSeed = seed + 1000 * attempt;
      Model model(drawSeed * 0x9E3779B97F4A7C15ull + 12345);
      build(model);
      checked = checkDraw(label, model, drawSeed, step, worst) == Draw::Checked;
      if (!checked)
        std::printf("[gradcheck] %s: seed %llu has an ill-conditioned "
                    "gate, drawing again\n",
                    label.c_str(), static_cast<unsigned long long>(drawSeed));
    }
    EXPECT_TRUE(checked) << label << ": no well-conditioned draw";
    worstPerSeed.push_back(worst);
  }
  std::printf("[gradcheck] %-30s worst relative error %.3g over %zu seeds\n",
              label.c_str(),
              *std::max_element(worstPerSeed.begin(), worstPerSeed.end()),
              worstPerSeed.size());
  return worstPerSeed;
}

/// moe.linear ([..., in] inputs) or moe.router ([T, hidden] tokens), with or
/// without a bias: the same affine map.
inline void buildAffine(Model &m, const std::string &op, bool bias) {
  Shape x = op == "linear" ? m.shape(1, 3) : Shape{m.dim()}, y = x;
  int64_t in = m.dim(), out = op == "linear" ? m.dim() : m.dim(2, 6);
  x.push_back(in);
  y.push_back(out);
  m.param("x", x);
  m.param("w", {out, in});
  if (bias)
    m.param("b", {out});
  m.emit("%y = moe." + op + " %x, %w" + (bias ? " bias %b" : "") + " : " +
         typeOf(x) + ", " + typeOf({out, in}) +
         (bias ? ", " + typeOf({out}) : "") + " -> " + typeOf(y));
  m.result("%y", y);
}

/// `moe.gate` attributes: " top_k = k [scoring = sigmoid] [norm_lambda = l]
/// [renormalize] [scale = s]".
inline std::string gateAttrs(int64_t k, double lambda, bool renormalize,
                             bool sigmoid = false, double scale = 1) {
  return " top_k = " + std::to_string(k) +
         (sigmoid ? " scoring = sigmoid" : "") +
         (lambda > 0 ? " norm_lambda = " + number(lambda) : "") +
         (renormalize ? " renormalize" : "") +
         (scale != 1 ? " scale = " + number(scale) : "");
}

/// The slots moe.dispatch assigns to row-major `indices` ([T, k]) under
/// `capacity` (token-major queues; -1 when dropped).
inline std::vector<int64_t> queueSlots(const std::vector<int64_t> &indices,
                                       int64_t experts, int64_t capacity) {
  std::vector<int64_t> load(experts, 0), slots;
  for (int64_t expert : indices)
    slots.push_back(load[expert] < capacity ? load[expert]++ : -1);
  return slots;
}

} // namespace gradcheck

#endif // MOE_TEST_UNIT_GRADIENTCHECKUTILS_H
