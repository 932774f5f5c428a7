//===- CpuExpertKernelsTest.cpp - f32 CPU expert kernels ------------------===//
//
// The expert FFN kernels of moert::cpu and the experts' similarity metric
// against the reference kernels: the FFN kernels touch only each expert's
// first counts[e] rows and reject counts past capacity.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moert/CpuKernels.h"

#include "CpuRoutingTestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace moe::test;
namespace cpu = moert::cpu;
namespace ref = mlir::moe::ref;

//===----------------------------------------------------------------------===//
// expert FFN
//===----------------------------------------------------------------------===//

TEST(CpuExpertKernelsTest, ExpertFfnAndGradMatchReferenceOnFilledRows) {
  for (const Shape &s : kShapes) {
    std::string name = s.name();
    int64_t capacity = expertCapacity(s);
    std::vector<int64_t> counts = mixedFills(s.experts, capacity);
    int64_t rows = s.experts * capacity * s.hidden;
    // Rows past counts are NaN for the kernel and zero for the reference,
    // whose weight gradients sum over every row: zero rows add nothing.
    Floats x = randomFloats(rows, 1), dy = randomFloats(rows, 2);
    Floats xRef = x, dyRef = dy;
    for (int64_t e = 0; e < s.experts; ++e)
      for (int64_t i = (e * capacity + counts[e]) * s.hidden;
           i < (e + 1) * capacity * s.hidden; ++i) {
        x[i] = dy[i] = NAN;
        xRef[i] = dyRef[i] = 0;
      }
    float scale = 1.0f / std::sqrt(static_cast<float>(s.hidden));
    Floats gateProj = randomFloats(s.experts * s.ffn * s.hidden, 3, scale);
    Floats upProj = randomFloats(s.experts * s.ffn * s.hidden, 4, scale);
    Floats downProj = randomFloats(s.experts * s.hidden * s.ffn, 5, scale);
    Tensor xT = f32({s.experts, capacity, s.hidden}, xRef);
    Tensor gateT = f32({s.experts, s.ffn, s.hidden}, gateProj);
    Tensor upT = f32({s.experts, s.ffn, s.hidden}, upProj);
    Tensor downT = f32({s.experts, s.hidden, s.ffn}, downProj);

    Floats y = output(rows),
           projections = output(s.experts * 2 * capacity * s.ffn);
    cpu::expertFfn(x.data(), gateProj.data(), upProj.data(), downProj.data(),
                   counts.data(), s.experts, capacity, s.hidden, s.ffn,
                   y.data(), projections.data());
    Floats filled;
    for (double value : filledRows(y, counts, capacity, s.hidden))
      filled.push_back(static_cast<float>(value));
    expectClose(filled,
                filledRows(ref::expertFfn(xT, gateT, upT, downT).data, counts,
                           capacity, s.hidden),
                "expertFfn " + name);
    EXPECT_TRUE(restUntouched(y, counts, capacity, s.hidden)) << name;
    // The projections the backward reads: each expert's gate then up rows.
    std::vector<int64_t> projectionCounts;
    for (int64_t count : counts)
      projectionCounts.insert(projectionCounts.end(), {count, count});
    filled.clear();
    for (double value :
         filledRows(projections, projectionCounts, capacity, s.ffn))
      filled.push_back(static_cast<float>(value));
    expectClose(filled,
                filledRows(ref::expertProjections(xT, gateT, upT).data,
                           projectionCounts, capacity, s.ffn),
                "expertFfn projections " + name);

    Floats dx = output(rows), dGate = output(gateProj.size()),
           dUp = output(upProj.size()), dDown = output(downProj.size());
    cpu::expertFfnGrad(x.data(), gateProj.data(), upProj.data(),
                       downProj.data(), projections.data(), dy.data(),
                       counts.data(), s.experts, capacity, s.hidden, s.ffn,
                       dx.data(), dGate.data(), dUp.data(), dDown.data());
    ref::ExpertFfnGrads expected = ref::expertFfnGrad(
        xT, gateT, upT, downT, f32({s.experts, capacity, s.hidden}, dyRef));
    filled.clear();
    for (double value : filledRows(dx, counts, capacity, s.hidden))
      filled.push_back(static_cast<float>(value));
    expectClose(filled,
                filledRows(expected.dInput.data, counts, capacity, s.hidden),
                "expertFfnGrad dx " + name);
    EXPECT_TRUE(restUntouched(dx, counts, capacity, s.hidden)) << name;
    expectClose(dGate, expected.dGateProj, "expertFfnGrad dGate " + name);
    expectClose(dUp, expected.dUpProj, "expertFfnGrad dUp " + name);
    expectClose(dDown, expected.dDownProj, "expertFfnGrad dDown " + name);
  }
}

TEST(CpuExpertKernelsTest, ExpertFfnSaturatesLikeTheReference) {
  // Projections far into the sigmoid's tails (|g| up to ~200): silu(g) -> 0
  // for g << 0 and -> g for g >> 0, and the gradients stay finite.
  const int64_t experts = 1, capacity = 40, hidden = 3, ffn = 19;
  Floats x = randomFloats(capacity * hidden, 1, 30.0f);
  Floats gateProj = randomFloats(ffn * hidden, 2, 2.0f),
         upProj = randomFloats(ffn * hidden, 3),
         downProj = randomFloats(hidden * ffn, 4);
  Floats dy = randomFloats(capacity * hidden, 5);
  std::vector<int64_t> counts = {capacity};
  Tensor xT = f32({experts, capacity, hidden}, x);
  Tensor gateT = f32({experts, ffn, hidden}, gateProj),
         upT = f32({experts, ffn, hidden}, upProj),
         downT = f32({experts, hidden, ffn}, downProj);
  Floats y = output(x.size()), projections = output(2 * capacity * ffn);
  cpu::expertFfn(x.data(), gateProj.data(), upProj.data(), downProj.data(),
                 counts.data(), experts, capacity, hidden, ffn, y.data(),
                 projections.data());
  expectClose(y, ref::expertFfn(xT, gateT, upT, downT), "saturated expertFfn");
  Floats dx = output(x.size()), dGate = output(gateProj.size()),
         dUp = output(upProj.size()), dDown = output(downProj.size());
  cpu::expertFfnGrad(x.data(), gateProj.data(), upProj.data(), downProj.data(),
                     projections.data(), dy.data(), counts.data(), experts,
                     capacity, hidden, ffn, dx.data(), dGate.data(), dUp.data(),
                     dDown.data());
  ref::ExpertFfnGrads expected = ref::expertFfnGrad(
      xT, gateT, upT, downT, f32({experts, capacity, hidden}, dy));
  expectClose(dx, expected.dInput, "saturated dx");
  expectClose(dGate, expected.dGateProj, "saturated dGate");
  expectClose(dUp, expected.dUpProj, "saturated dUp");
  expectClose(dDown, expected.dDownProj, "saturated dDown");
}

TEST(CpuExpertKernelsTest, ExpertFfnRejectsCountsPastCapacity) {
  Floats x(2 * 2 * 2, 0.0f), w(2 * 2 * 2, 0.0f), y(8), dw(8), p(16);
  for (int64_t bad : {3, -1}) {
    std::vector<int64_t> counts = {1, bad};
    std::string expected = "moe.expert_ffn: count " + std::to_string(bad) +
                           " of expert 1 is outside [0, 2]";
    EXPECT_EQ(errorOf([&] {
                cpu::expertFfn(x.data(), w.data(), w.data(), w.data(),
                               counts.data(), 2, 2, 2, 2, y.data(), p.data());
              }),
              expected);
    EXPECT_EQ(errorOf([&] {
                cpu::expertFfnGrad(x.data(), w.data(), w.data(), w.data(),
                                   p.data(), x.data(), counts.data(), 2, 2, 2,
                                   2, y.data(), dw.data(), dw.data(),
                                   dw.data());
              }),
              expected);
  }
}

//===----------------------------------------------------------------------===//
// expert_similarity
//===----------------------------------------------------------------------===//

TEST(CpuExpertKernelsTest, ExpertSimilarityMatchesReference) {
  for (const Shape &s : kShapes) {
    if (s.experts < 2)
      continue;
    std::string name = s.name();
    auto [gateProj, upProj, downProj] = similarExperts(s);
    float similarity =
        cpu::expertSimilarity(gateProj.data(), upProj.data(), downProj.data(),
                              s.experts, s.ffn, s.hidden);
    expectScalarClose(
        similarity,
        ref::expertSimilarity(f32({s.experts, s.ffn, s.hidden}, gateProj),
                              f32({s.experts, s.ffn, s.hidden}, upProj),
                              f32({s.experts, s.hidden, s.ffn}, downProj),
                              DType::F32),
        "expertSimilarity " + name, 1e-5);
    EXPECT_EQ(similarity, cpu::expertSimilarity(gateProj.data(), upProj.data(),
                                                downProj.data(), s.experts,
                                                s.ffn, s.hidden))
        << name << " differs between two runs";
  }
}
