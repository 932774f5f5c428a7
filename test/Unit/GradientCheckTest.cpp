//===- GradientCheckTest.cpp - moe-autodiff against finite differences ----===//
//
// moe-autodiff's gradients of the transformer ops, the z-loss and two
// composed blocks against central finite differences of the reference
// interpreter (GradientCheckUtils.h), and the checker itself; the routing
// and expert ops are in GradientCheckRoutingTest.cpp.
//
//===----------------------------------------------------------------------===//

#include "GradientCheckUtils.h"

#include "moe/MoeDialect.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

using namespace mlir;

namespace {

using namespace gradcheck;

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

void buildAttention(Model &m, bool causal, int64_t heads, int64_t kvHeads,
                    bool sinks = false) {
  int64_t batch = m.dim(1, 2), seq = m.dim(1, 5), headDim = m.dim(1, 4);
  Shape q = {batch, seq, heads, headDim}, kv = {batch, seq, kvHeads, headDim};
  m.param("q", q);
  m.param("k", kv);
  m.param("v", kv);
  if (sinks)
    m.param("s", {heads});
  m.emit("%o, %lse = moe.attention %q, %k, %v" +
         (sinks ? " sinks(%s : " + typeOf({heads}) + ")" : std::string()) +
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
    checkCase("attention sinks 4/2 heads" + suffix,
              [&](Model &m) { buildAttention(m, causal, 4, 2, true); });
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

TEST(GradientCheck, Scale) {
  checkCase("scale", [](Model &m) {
    Shape x = m.shape(1, 3, 5);
    m.param("x", x);
    m.emit("%y = moe.scale %x by 0.22 : " + typeOf(x));
    // A second use of %x: its gradient adds up over both uses.
    m.emit("%z = moe.mul %y, %x : " + typeOf(x));
    m.result("%z", x);
  });
}

TEST(GradientCheck, LastDimLayout) {
  checkCase("slice, pad, concat", [](Model &m) {
    // [..., heads, width] with a part of one head that every head reads,
    // on either side.
    Shape rows = m.shape(1, 2), one = rows;
    int64_t width = m.dim(2, 6), offset = m.dim(0, width - 1);
    int64_t size = m.dim(1, width - offset), shared = m.dim(1, 3);
    bool sharedLeft = m.coin();
    rows.push_back(m.dim(1, 3));
    one.push_back(1);
    auto last = [](Shape shape, int64_t d) {
      shape.push_back(d);
      return shape;
    };
    Shape x = last(rows, width), window = last(rows, size);
    Shape part = last(one, shared), joined = last(rows, size + shared);
    m.param("x", x);
    m.param("p", part);
    m.emit("%s = moe.slice %x from " + std::to_string(offset) + " : " +
           typeOf(x) + " -> " + typeOf(window));
    std::string lhs = sharedLeft ? "%p" : "%s", rhs = sharedLeft ? "%s" : "%p";
    m.emit("%c = moe.concat " + lhs + ", " + rhs + " : " +
           typeOf(sharedLeft ? part : window) + ", " +
           typeOf(sharedLeft ? window : part) + " -> " + typeOf(joined));
    Shape padded = last(rows, size + shared + 2);
    m.emit("%y = moe.pad %c at 1 : " + typeOf(joined) + " -> " +
           typeOf(padded));
    // A second use of the window: its gradient adds up over both uses.
    m.emit("%w = moe.pad %s at 0 : " + typeOf(window) + " -> " +
           typeOf(padded));
    m.emit("%z = moe.mul %y, %w : " + typeOf(padded));
    m.result("%z", padded);
  });
}

TEST(GradientCheck, SigmoidScale) {
  checkCase("sigmoid_scale", [](Model &m) {
    Shape x = m.shape(1, 3, 5), logit = x;
    logit.back() = 1;
    m.param("x", x);
    m.param("g", logit, 2.0);
    m.emit("%y = moe.sigmoid_scale %x, %g : " + typeOf(x) + ", " +
           typeOf(logit));
    // A second use of %x: its gradient adds up over both uses.
    m.emit("%z = moe.mul %y, %x : " + typeOf(x));
    m.result("%z", x);
  });
}

TEST(GradientCheck, SigmoidScaleByElement) {
  checkCase("sigmoid_scale_by_element", [](Model &m) {
    Shape x = m.shape(1, 3, 5);
    m.param("x", x);
    m.param("g", x, 2.0);
    m.emit("%y = moe.sigmoid_scale %x, %g : " + typeOf(x) + ", " + typeOf(x));
    m.result("%y", x);
  });
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
// The z-loss, also the checker's own case below (the other routing ops:
// GradientCheckRoutingTest.cpp)
//===----------------------------------------------------------------------===//

void buildZLoss(Model &m) {
  Shape logits = {m.dim(), m.dim(2, 6)};
  m.param("z", logits);
  m.emit("%l = moe.z_loss %z : " + typeOf(logits) + " -> tensor<f64>");
  m.result("%l", {});
}

TEST(GradientCheck, ZLoss) { checkCase("z_loss", buildZLoss); }

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
  EXPECT_EQ(moe::gradientRelativeError(nan, nan, 1.0, 0.0), inf);
  EXPECT_EQ(moe::gradientRelativeError(inf, inf, 1.0, 0.0), inf);
  EXPECT_EQ(moe::gradientRelativeError(nan, 1.0, nan, 0.0), inf);
  EXPECT_EQ(moe::gradientRelativeError(0.0, 0.0, 0.0, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(moe::gradientRelativeError(1.0, 4.0, 1.0, 0.0), 0.5);
}

TEST(GradientRelativeErrorTest, GradientsBelowTheFloorCompareToIt) {
  // An exactly zero gradient: autodiff 1.9e-20, finite differences 0.
  EXPECT_LT(moe::gradientRelativeError(1.9e-20 * 1.9e-20, 1.9e-20 * 1.9e-20,
                                       0.0, 1e-8),
            1e-6);
  // Rounding noise of a finite difference in f64, against a floor of 1e-4.
  EXPECT_LT(moe::gradientRelativeError(1e-22, 0.0, 1e-22, 1e-8), 1e-6);
  // A wrong gradient of 1e-7 stays wrong.
  EXPECT_GT(moe::gradientRelativeError(1e-14, 0.0, 1e-14, 1e-8), 1e-4);
  // Above the floor, the floor changes nothing.
  EXPECT_DOUBLE_EQ(moe::gradientRelativeError(1.0, 4.0, 1.0, 1e-8), 0.5);
}
