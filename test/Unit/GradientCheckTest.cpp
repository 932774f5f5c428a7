//===- GradientCheckTest.cpp - moe-autodiff against finite differences ----===//
//
// For every differentiable op (and for two composed blocks), builds a small
// f64 module from randomly drawn shapes: every float input is a trainable
// global loaded in @forward, every integer input an arith.constant. Then
// mlir::moe::checkGradients differentiates @forward with moe-autodiff (a
// vector-Jacobian product with a random cotangent) and compares the gradient
// of every element of every global with central finite differences
// evaluated by the reference interpreter. Each case runs under several
// seeds; a failure prints the op, the seed and the whole module.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradientCheck.h"
#include "moe/InitAllDialects.h"
#include "moe/Interpreter/Evaluator.h"

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

using namespace mlir;

namespace {

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

std::string typeOf(const Shape &shape, const char *element = "f64") {
  std::string text = "tensor<";
  for (int64_t dim : shape)
    text += std::to_string(dim) + "x";
  return text + element + ">";
}
std::string i32(const Shape &shape) { return typeOf(shape, "i32"); }

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6e", value);
  return buffer;
}

int64_t product(const Shape &shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

/// `[[a, b], [c, d]]` for a dense attribute of `shape` (row-major values).
std::string denseList(const Shape &shape, const std::vector<int64_t> &values,
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
  /// An i32 constant `%name` of `shape` with the given row-major values.
  std::string ints(const std::string &name, const Shape &shape,
                   const std::vector<int64_t> &values) {
    emit("%" + name + " = arith.constant dense<" + denseList(shape, values) +
         "> : " + i32(shape));
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
bool wellConditionedGate(const moe::ref::Tensor &logits, int64_t k,
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
Draw checkDraw(const std::string &label, const Model &model, uint64_t seed,
               double step, double &worst) {
  DialectRegistry registry;
  moe::registerAllDialects(registry);
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diagnostic) {
    diagnostics += diagnostic.str() + "\n";
    return success();
  });
  std::string text = model.text();
  std::string where = label + ", seed " + std::to_string(seed) + ":\n" + text;

  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
  if (!module) {
    ADD_FAILURE() << "parse failed: " << diagnostics << where;
    return Draw::Checked;
  }
  moe::Evaluator evaluator(*module);
  if (failed(evaluator.initializeGlobals(seed))) {
    ADD_FAILURE() << "initialization failed: " << diagnostics << where;
    return Draw::Checked;
  }
  if (auto probe = module->lookupSymbol<func::FuncOp>("probe")) {
    FailureOr<std::vector<moe::ref::Tensor>> logits = evaluator.run(probe, {});
    if (failed(logits)) {
      ADD_FAILURE() << "probe failed: " << diagnostics << where;
      return Draw::Checked;
    }
    if (!wellConditionedGate((*logits)[0], model.probeK, model.probeLambda))
      return Draw::IllConditioned;
  }

  if (auto dropped = module->lookupSymbol<func::FuncOp>("dropped")) {
    FailureOr<std::vector<moe::ref::Tensor>> count = evaluator.run(dropped, {});
    if (failed(count))
      ADD_FAILURE() << "@dropped failed: " << diagnostics << where;
    else
      EXPECT_EQ((*count)[0].data[0], model.expectedDrops) << where;
  }

  moe::GradientCheckOptions options;
  options.function = "forward";
  options.seed = seed;
  options.samplesPerTensor = 1 << 20; // every element
  options.step = step;
  FailureOr<std::vector<moe::TensorGradientCheck>> checks =
      moe::checkGradients(*module, evaluator, {}, options);
  if (failed(checks)) {
    ADD_FAILURE() << "checkGradients failed: " << diagnostics << where;
    return Draw::Checked;
  }
  EXPECT_FALSE(checks->empty()) << where;
  for (const moe::TensorGradientCheck &check : *checks) {
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
std::vector<double> checkCase(const std::string &label, const Build &build,
                              double step = kStep) {
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

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

TEST(GradientCheck, Embedding) {
  checkCase("embedding", [](Model &m) {
    int64_t vocab = m.dim(), hidden = m.dim();
    Shape idsShape = m.shape(1, 2), out = idsShape;
    out.push_back(hidden);
    m.param("table", {vocab, hidden});
    m.ids("ids", idsShape, vocab);
    m.emit("%h = moe.embedding %table[%ids] : " + typeOf({vocab, hidden}) +
           ", " + i32(idsShape) + " -> " + typeOf(out));
    m.result("%h", out);
  });
}

TEST(GradientCheck, RmsNorm) {
  // RMSNorm bends sharply where a row's rms is small, and with hidden = 1 it
  // is w * sign(x) up to eps (a gradient of ~1e-5 that the differences'
  // rounding swamps); the truncation error grows like (step / rms)^2. So
  // hidden >= 2, and x starts at std 3: the output does not depend on x's
  // scale (up to eps), but the step is 3x smaller relative to it.
  checkCase("rms_norm", [](Model &m) {
    Shape x = m.shape(1, 3);
    int64_t hidden = m.dim(2, 6);
    x.push_back(hidden);
    m.param("x", x, 3.0);
    m.param("w", {hidden});
    m.emit("%y = moe.rms_norm %x, %w eps = 1.0e-05 : " + typeOf(x) + ", " +
           typeOf({hidden}));
    m.result("%y", x);
  });
}

/// moe.linear ([..., in] inputs) or moe.router ([T, hidden] tokens), with or
/// without a bias: the same affine map.
void buildAffine(Model &m, const std::string &op, bool bias) {
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

TEST(GradientCheck, Linear) {
  checkCase("linear", [](Model &m) { buildAffine(m, "linear", false); });
  checkCase("linear bias", [](Model &m) { buildAffine(m, "linear", true); });
}

void buildRope(Model &m, bool inverse) {
  Shape x = {m.dim(1, 2), m.dim(1, 5), m.dim(1, 3), 2 * m.dim(1, 3)};
  double theta = m.pick({10000.0, 10.0, 2.0});
  m.param("x", x);
  m.emit("%y = moe.rope %x theta = " + number(theta) +
         (inverse ? " inverse" : "") + " : " + typeOf(x));
  // A product after rope, so that the output is not linear in %x alone.
  m.param("s", x);
  m.emit("%z = moe.mul %y, %s : " + typeOf(x));
  m.result("%z", x);
}

TEST(GradientCheck, Rope) {
  checkCase("rope", [](Model &m) { buildRope(m, false); });
  checkCase("rope inverse", [](Model &m) { buildRope(m, true); });
}

void buildAttention(Model &m, bool causal, int64_t heads, int64_t kvHeads) {
  int64_t batch = m.dim(1, 2), seq = m.dim(1, 5), headDim = m.dim(1, 4);
  Shape q = {batch, seq, heads, headDim}, kv = {batch, seq, kvHeads, headDim};
  m.param("q", q);
  m.param("k", kv);
  m.param("v", kv);
  m.emit("%o, %lse = moe.attention %q, %k, %v" +
         std::string(causal ? " causal" : "") + " : " + typeOf(q) + ", " +
         typeOf(kv));
  m.result("%o", q);
}

TEST(GradientCheck, Attention) {
  for (bool causal : {false, true}) {
    std::string suffix = causal ? " causal" : "";
    checkCase("attention" + suffix, [&](Model &m) {
      int64_t kvHeads = m.dim(1, 2);
      buildAttention(m, causal, kvHeads * m.dim(1, 3), kvHeads);
    });
    checkCase("attention 4/2 heads" + suffix,
              [&](Model &m) { buildAttention(m, causal, 4, 2); });
  }
}

TEST(GradientCheck, Elementwise) {
  for (std::string op : {"swiglu", "add", "mul"}) {
    checkCase(op, [&](Model &m) {
      Shape x = m.shape(1, 3, 5);
      m.param("a", x);
      m.param("b", x);
      m.emit("%y = moe." + op + " %a, %b : " + typeOf(x));
      // A second use of %a: its gradient adds up over both uses.
      m.emit("%z = moe." + op + " %y, %a : " + typeOf(x));
      m.result("%z", x);
    });
  }
}

TEST(GradientCheck, CrossEntropy) {
  checkCase("cross_entropy", [](Model &m) {
    Shape targets = m.shape(1, 2);
    int64_t vocab = m.dim(2, 6);
    Shape logits = targets;
    logits.push_back(vocab);
    m.param("logits", logits, 2.0);
    m.ids("targets", targets, vocab);
    m.emit("%l = moe.cross_entropy %logits, %targets : " + typeOf(logits) +
           ", " + i32(targets) + " -> tensor<f64>");
    m.result("%l", {});
  });
}

//===----------------------------------------------------------------------===//
// Routing and experts
//===----------------------------------------------------------------------===//

TEST(GradientCheck, Router) {
  checkCase("router", [](Model &m) { buildAffine(m, "router", false); });
  checkCase("router bias", [](Model &m) { buildAffine(m, "router", true); });
}

/// `moe.gate` attributes: " top_k = k [norm_lambda = l] [renormalize]".
std::string gateAttrs(int64_t k, double lambda, bool renormalize) {
  return " top_k = " + std::to_string(k) +
         (lambda > 0 ? " norm_lambda = " + number(lambda) : "") +
         (renormalize ? " renormalize" : "");
}

TEST(GradientCheck, Gate) {
  // The output uses both differentiable results: probs + weights P^T, so the
  // logits' gradient sums the paths through the softmax and the top-k. With
  // norm_lambda the logits start at std 10: z~ does not depend on their
  // scale, so the probabilities are as with std 1, but a step of 1e-4 is 10x
  // smaller relative to each row's std (see kMinLogitStd).
  for (double lambda : {0.0, 1.0, 2.5}) {
    for (bool renormalize : {false, true}) {
      std::string label =
          "gate" +
          std::string(lambda > 0 ? " norm_lambda " + number(lambda) : "") +
          (renormalize ? " renormalize" : "");
      checkCase(label, [&](Model &m) {
        int64_t tokens = m.dim(), experts = m.dim(lambda > 0 ? 3 : 2, 6),
                k = m.dim(1, experts);
        Shape probs = {tokens, experts}, weights = {tokens, k};
        m.param("z", probs, lambda > 0 ? 10.0 : 1.0);
        m.emit("%p, %w, %i = moe.gate %z" + gateAttrs(k, lambda, renormalize) +
               " : " + typeOf(probs) + " -> " + typeOf(probs) + ", " +
               typeOf(weights) + ", " + i32(weights));
        m.param("proj", {experts, k});
        m.emit("%wp = moe.linear %w, %proj : " + typeOf(weights) + ", " +
               typeOf({experts, k}) + " -> " + typeOf(probs));
        m.emit("%y = moe.add %p, %wp : " + typeOf(probs));
        m.result("%y", probs);
        m.probe("%z", tokens, experts, k, lambda);
      });
    }
  }
}

TEST(GradientCheck, GateNorm) {
  // Through the mean and the population std of each row, conditioned as the
  // gate with norm_lambda: at least three experts, logits of std 10, and
  // draws with a row's std under kMinLogitStd replaced (the probe with k = 0
  // checks only that).
  for (double lambda : {1.0, 2.5}) {
    checkCase("gate_norm norm_lambda " + number(lambda), [&](Model &m) {
      int64_t tokens = m.dim(), experts = m.dim(3, 6);
      Shape logits = {tokens, experts};
      m.param("z", logits, 10.0);
      m.emit("%zn = moe.gate_norm %z norm_lambda = " + number(lambda) +
             " norm_eps = 1.000000e-03 : " + typeOf(logits));
      m.result("%zn", logits);
      m.probe("%z", tokens, experts, 0, lambda);
    });
  }
}

/// The slots moe.dispatch assigns to row-major `indices` ([T, k]) under
/// `capacity` (token-major queues; -1 when dropped).
std::vector<int64_t> queueSlots(const std::vector<int64_t> &indices,
                                int64_t experts, int64_t capacity) {
  std::vector<int64_t> load(experts, 0), slots;
  for (int64_t expert : indices)
    slots.push_back(load[expert] < capacity ? load[expert]++ : -1);
  return slots;
}

void buildDispatch(Model &m, bool dropless) {
  int64_t tokens = m.dim(2, 6), hidden = m.dim(), experts = m.dim(2, 5),
          k = m.dim(1, std::min<int64_t>(experts, 3));
  std::vector<int64_t> indices = m.choices(tokens, k, experts);
  int64_t capacity = tokens;
  std::string mode = " dropless";
  m.expectedDrops = 0;
  // With a capacity factor, draw choices and a factor until some assignment
  // is dropped; @dropped checks that the interpreter drops as many.
  while (!dropless && m.expectedDrops == 0) {
    indices = m.choices(tokens, k, experts);
    double factor = m.pick({0.25, 0.5, 0.75, 1.0});
    capacity = moe::expertCapacity(factor, tokens, k, experts);
    std::vector<int64_t> slots = queueSlots(indices, experts, capacity);
    m.expectedDrops = std::count(slots.begin(), slots.end(), -1);
    mode = " capacity_factor = " + number(factor);
  }
  Shape x = {tokens, hidden}, choice = {tokens, k},
        buffer = {experts, capacity, hidden};
  m.param("x", x);
  m.ints("i", choice, indices);
  m.emit("%buf, %slots, %dropped = moe.dispatch %x, %i" + mode + " : " +
         typeOf(x) + ", " + i32(choice) + " -> " + typeOf(buffer) + ", " +
         i32(choice) + ", tensor<i64>");
  m.result("%buf", buffer);
}

TEST(GradientCheck, Dispatch) {
  checkCase("dispatch capacity (drops)",
            [](Model &m) { buildDispatch(m, false); });
  checkCase("dispatch dropless", [](Model &m) { buildDispatch(m, true); });
}

TEST(GradientCheck, ExpertFfn) {
  checkCase("expert_ffn", [](Model &m) {
    int64_t experts = m.dim(1, 4), capacity = m.dim(1, 4), hidden = m.dim(),
            ffn = m.dim();
    Shape in = {experts, capacity, hidden}, up = {experts, ffn, hidden},
          down = {experts, hidden, ffn};
    m.param("x", in);
    m.param("w1", up);
    m.param("w3", up);
    m.param("w2", down);
    m.emit("%y, %proj = moe.expert_ffn %x, %w1, %w3, %w2 : " + typeOf(in) +
           ", " + typeOf(up) + ", " + typeOf(down) + " -> " +
           typeOf({experts, 2, capacity, ffn}));
    m.result("%y", in);
  });
}

TEST(GradientCheck, Combine) {
  checkCase("combine", [](Model &m) {
    int64_t tokens = m.dim(), hidden = m.dim(), experts = m.dim(2, 5),
            k = m.dim(1, std::min<int64_t>(experts, 3)), capacity = m.dim(1, 3);
    std::vector<int64_t> indices = m.choices(tokens, k, experts);
    Shape out = {experts, capacity, hidden}, choice = {tokens, k};
    m.param("out", out);
    m.param("w", choice);
    m.ints("i", choice, indices);
    m.ints("slots", choice, queueSlots(indices, experts, capacity));
    m.emit("%y = moe.combine %out, %w, %i, %slots : " + typeOf(out) + ", " +
           typeOf(choice) + ", " + i32(choice) + ", " + i32(choice) + " -> " +
           typeOf({tokens, hidden}));
    m.result("%y", {tokens, hidden});
  });
}

TEST(GradientCheck, AuxLoss) {
  // The loss is smooth in probs for any values, so probs is a free global.
  for (std::string kind : {"skywork", "switch"}) {
    checkCase("aux_loss " + kind, [&](Model &m) {
      int64_t tokens = m.dim(), experts = m.dim(2, 6), k = m.dim(1, experts);
      Shape probs = {tokens, experts}, choice = {tokens, k};
      m.param("p", probs);
      m.ints("i", choice, m.choices(tokens, k, experts));
      m.emit("%l = moe.aux_loss " + kind + " %p, %i : " + typeOf(probs) + ", " +
             i32(choice) + " -> tensor<f64>");
      m.result("%l", {});
    });
  }
}

void buildZLoss(Model &m) {
  Shape logits = {m.dim(), m.dim(2, 6)};
  m.param("z", logits);
  m.emit("%l = moe.z_loss %z : " + typeOf(logits) + " -> tensor<f64>");
  m.result("%l", {});
}

TEST(GradientCheck, ZLoss) { checkCase("z_loss", buildZLoss); }

TEST(GradientCheck, Reshapes) {
  // x [A, B, C] collapses to [A*B, C], is multiplied by y, expands back and
  // is multiplied by x again.
  checkCase("expand_shape/collapse_shape", [](Model &m) {
    int64_t a = m.dim(1, 4), b = m.dim(1, 4), c = m.dim(1, 4);
    Shape x = {a, b, c}, flat = {a * b, c};
    m.param("x", x);
    m.param("y", flat);
    m.emit("%f = tensor.collapse_shape %x [[0, 1], [2]] : " + typeOf(x) +
           " into " + typeOf(flat));
    m.emit("%g = moe.mul %f, %y : " + typeOf(flat));
    m.emit("%e = tensor.expand_shape %g [[0, 1], [2]] output_shape [" +
           std::to_string(a) + ", " + std::to_string(b) + ", " +
           std::to_string(c) + "] : " + typeOf(flat) + " into " + typeOf(x));
    m.emit("%r = moe.mul %e, %x : " + typeOf(x));
    m.result("%r", x);
  });
}

//===----------------------------------------------------------------------===//
// Composed blocks
//===----------------------------------------------------------------------===//

TEST(GradientCheck, MoeLayer) {
  // router -> gate -> dispatch -> expert_ffn -> combine -> cross_entropy,
  // plus alpha * aux_loss(probs) with alpha a non-trainable global. The
  // experts' weights start at std 0.5 so that the expert outputs (and the
  // third derivatives the central differences neglect) stay moderate. The
  // gate's guards (kMinGateGap, kMinLogitStd) apply; with norm_lambda the
  // layer has at least three experts.
  checkCase("moe layer", [](Model &m) {
    double lambda = m.pick({0.0, 1.0}), factor = m.pick({0.5, 1.0, 1.5});
    int64_t tokens = m.dim(3, 6), hidden = m.dim(2, 5),
            experts = m.dim(lambda > 0 ? 3 : 2, 5),
            k = m.dim(1, std::min<int64_t>(experts, 3)), ffn = m.dim(1, 4);
    bool bias = m.coin(), dropless = m.coin();
    int64_t capacity =
        dropless ? tokens : moe::expertCapacity(factor, tokens, k, experts);
    Shape x = {tokens, hidden}, logits = {tokens, experts},
          choice = {tokens, k}, buffer = {experts, capacity, hidden},
          up = {experts, ffn, hidden}, down = {experts, hidden, ffn};
    m.param("x", x);
    m.param("wg", {experts, hidden});
    if (bias)
      m.param("bg", {experts});
    m.param("w1", up, 0.5);
    m.param("w3", up, 0.5);
    m.param("w2", down, 0.5);
    m.state("alpha", {}, 0.5);
    m.ids("targets", {tokens}, hidden);
    m.emit("%z = moe.router %x, %wg" + std::string(bias ? " bias %bg" : "") +
           " : " + typeOf(x) + ", " + typeOf({experts, hidden}) +
           (bias ? ", " + typeOf({experts}) : "") + " -> " + typeOf(logits));
    m.emit("%p, %w, %i = moe.gate %z" + gateAttrs(k, lambda, m.coin()) + " : " +
           typeOf(logits) + " -> " + typeOf(logits) + ", " + typeOf(choice) +
           ", " + i32(choice));
    m.emit("%buf, %slots, %dropped = moe.dispatch %x, %i" +
           (dropless ? std::string(" dropless")
                     : " capacity_factor = " + number(factor)) +
           " : " + typeOf(x) + ", " + i32(choice) + " -> " + typeOf(buffer) +
           ", " + i32(choice) + ", tensor<i64>");
    m.emit("%e, %proj = moe.expert_ffn %buf, %w1, %w3, %w2 : " +
           typeOf(buffer) + ", " + typeOf(up) + ", " + typeOf(down) + " -> " +
           typeOf({experts, 2, capacity, ffn}));
    m.emit("%y = moe.combine %e, %w, %i, %slots : " + typeOf(buffer) + ", " +
           typeOf(choice) + ", " + i32(choice) + ", " + i32(choice) + " -> " +
           typeOf(x));
    m.emit("%ce = moe.cross_entropy %y, %targets : " + typeOf(x) + ", " +
           i32({tokens}) + " -> tensor<f64>");
    m.emit(
        "%aux = moe.aux_loss " + std::string(m.coin() ? "skywork" : "switch") +
        " %p, %i : " + typeOf(logits) + ", " + i32(choice) + " -> tensor<f64>");
    m.emit("%scaled = moe.mul %aux, %alpha : tensor<f64>");
    m.emit("%loss = moe.add %ce, %scaled : tensor<f64>");
    m.result("%loss", {});
    m.probe("%z", tokens, experts, k, lambda);
  });
}

TEST(GradientCheck, DenseResidualBlock) {
  // x + W_down swiglu(W_gate n, W_up n) with n = rms_norm(x); x starts at
  // std 3 and the weights at 0.5 for the reasons given in RmsNorm and
  // MoeLayer.
  checkCase("dense residual block", [](Model &m) {
    Shape x = {m.dim(1, 2), m.dim(1, 4), m.dim(2, 5)};
    int64_t hidden = x[2], ffn = m.dim(1, 5);
    Shape h = {x[0], x[1], ffn};
    m.param("x", x, 3.0);
    m.param("norm", {hidden});
    m.param("wgate", {ffn, hidden}, 0.5);
    m.param("wup", {ffn, hidden}, 0.5);
    m.param("wdown", {hidden, ffn}, 0.5);
    m.emit("%n = moe.rms_norm %x, %norm eps = 1.0e-05 : " + typeOf(x) + ", " +
           typeOf({hidden}));
    m.emit("%g = moe.linear %n, %wgate : " + typeOf(x) + ", " +
           typeOf({ffn, hidden}) + " -> " + typeOf(h));
    m.emit("%u = moe.linear %n, %wup : " + typeOf(x) + ", " +
           typeOf({ffn, hidden}) + " -> " + typeOf(h));
    m.emit("%s = moe.swiglu %g, %u : " + typeOf(h));
    m.emit("%d = moe.linear %s, %wdown : " + typeOf(h) + ", " +
           typeOf({hidden, ffn}) + " -> " + typeOf(x));
    m.emit("%y = moe.add %x, %d : " + typeOf(x));
    m.result("%y", x);
  });
}

//===----------------------------------------------------------------------===//
// The checker itself
//===----------------------------------------------------------------------===//

TEST(GradientCheck, CheckerDetectsWrongDifferences) {
  // With a step of 10 the central differences of the nonlinear z-loss are far
  // from its derivative: the metric must say so (the same case passes with
  // the default step in ZLoss).
  for (double error : checkCase("z_loss, step 10", buildZLoss, 10.0))
    EXPECT_GT(error, 1e-3);
}

} // namespace

// A NaN or infinite gradient on either side is an infinite error: the
// checker must never report it as agreement.
TEST(GradientRelativeErrorTest, NonFiniteGradientsFail) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(moe::gradientRelativeError(nan, nan, 1.0), inf);
  EXPECT_EQ(moe::gradientRelativeError(inf, inf, 1.0), inf);
  EXPECT_EQ(moe::gradientRelativeError(nan, 1.0, nan), inf);
  EXPECT_EQ(moe::gradientRelativeError(0.0, 0.0, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(moe::gradientRelativeError(1.0, 4.0, 1.0), 0.5);
}
