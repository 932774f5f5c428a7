//===- CpuBf16KernelsTest.cpp - mixed-precision CPU kernels ---------------===//
//
// The bf16 conversions against moert::toBf16 (the interpreter's rounding)
// bit for bit, and the GEMM kernels on bf16 operands against the reference
// kernels on tensors of the same bf16 values: f32 accumulation, f32 results,
// and the expert activations and gradients, attention's probabilities and
// scores' gradients rounded to bf16 before their GEMMs, as the reference
// rounds them.
//
//===----------------------------------------------------------------------===//

#include "moe/Interpreter/GradKernels.h"
#include "moe/Interpreter/ReferenceKernels.h"
#include "moert/CpuKernels.h"

#include "Gemm.h"

#include "Bf16TestUtils.h"
#include "CpuRoutingTestUtils.h"
#include "ErrorTestUtils.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

using namespace moe::test;
using moert::bf16;
namespace cpu = moert::cpu;
namespace ref = mlir::moe::ref;

namespace {

Tensor bf16Tensor(std::vector<int64_t> shape, const Halves &values) {
  return tensor(DType::BF16, std::move(shape), widened(values));
}

} // namespace

TEST(CpuBf16KernelsTest, ConvertRoundsToNearestEvenLikeTheReference) {
  // Ties go to even, halfway plus one ulp goes up, the largest finite f32
  // overflows, NaNs stay NaN (quiet, sign kept), subnormals round too.
  EXPECT_EQ(moert::toBf16(1.0f + 0x1p-8f).bits, 0x3f80);
  EXPECT_EQ(moert::toBf16(1.0f + 3 * 0x1p-8f).bits, 0x3f82);
  EXPECT_EQ(moert::toBf16(fromBits(0x3f808001)).bits, 0x3f81);
  EXPECT_EQ(moert::toBf16(std::numeric_limits<float>::max()).bits, 0x7f80);
  EXPECT_EQ(moert::toBf16(fromBits(0xff800001)).bits, 0xffc0);
  EXPECT_EQ(moert::toBf16(fromBits(0x00008000)).bits, 0x0000);
  EXPECT_EQ(moert::toBf16(fromBits(0x00018000)).bits, 0x0002);
  EXPECT_EQ(ref::rounded(1.0 + 0x1p-8, DType::BF16), 1.0);

  // The vector conversion equals the scalar one on a spread of bit patterns
  // in a count that is no multiple of the vector width and large enough to
  // run on every thread.
  Floats values = bitPatternSpread();
  Halves narrow(values.size());
  cpu::convert(values.data(), static_cast<int64_t>(values.size()),
               narrow.data());
  int64_t mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i)
    mismatches += narrow[i].bits != moert::toBf16(values[i]).bits;
  EXPECT_EQ(mismatches, 0);

  Floats wide = output(static_cast<int64_t>(narrow.size()));
  cpu::convert(narrow.data(), static_cast<int64_t>(narrow.size()), wide.data());
  for (size_t i = 0; i < narrow.size(); ++i)
    ASSERT_EQ(bitsOf(wide[i]), uint32_t(narrow[i].bits) << 16) << i;
}

TEST(CpuBf16KernelsTest, ConvertCoversEveryElementOnAnyThreadCount) {
  // 3 threads over 65569 = 3 * 16 * 1366 + 1 values: the pieces must cover
  // the remainder too.
  int threads = omp_get_max_threads();
  omp_set_num_threads(3);
  const int64_t count = 3 * 16 * 1366 + 1;
  Floats values = randomFloats(count, 11);
  Halves narrow(count, bf16{0x7fc0});
  cpu::convert(values.data(), count, narrow.data());
  Floats wide = output(count);
  cpu::convert(narrow.data(), count, wide.data());
  omp_set_num_threads(threads);
  for (int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(narrow[i].bits, moert::toBf16(values[i]).bits) << i;
    ASSERT_EQ(bitsOf(wide[i]), uint32_t(narrow[i].bits) << 16) << i;
  }
}

struct LinearShape {
  int64_t rows, in, out;
};

TEST(CpuBf16KernelsTest, LinearAndGradsMatchReference) {
  for (LinearShape c :
       {LinearShape{1, 1, 1}, LinearShape{7, 5, 3}, LinearShape{768, 128, 256},
        LinearShape{33, 130, 257}, LinearShape{0, 5, 3}}) {
    std::string name = shapeName({c.rows, c.in, c.out});
    Halves x = narrowed(randomFloats(c.rows * c.in, 1));
    Halves weight = narrowed(randomFloats(c.out * c.in, 2));
    Floats bias = randomFloats(c.out, 3);
    Halves dy = narrowed(randomFloats(c.rows * c.out, 4));
    Tensor xRef = bf16Tensor({c.rows, c.in}, x);
    Tensor wRef = bf16Tensor({c.out, c.in}, weight);
    Tensor bRef = f32({c.out}, bias), dyRef = bf16Tensor({c.rows, c.out}, dy);

    Floats y = output(c.rows * c.out);
    cpu::linear(x.data(), weight.data(), bias.data(), c.rows, c.in, c.out,
                y.data());
    expectClose(y, ref::linear(xRef, wRef, &bRef), "linear+bias " + name);
    Floats dx = output(c.rows * c.in);
    cpu::linearInputGrad(dy.data(), weight.data(), c.rows, c.in, c.out,
                         dx.data());
    expectClose(dx, ref::linearInputGrad(dyRef, wRef),
                "linearInputGrad " + name);
    Floats dWeight = output(c.out * c.in);
    cpu::linearWeightGrad(dy.data(), x.data(), c.rows, c.in, c.out,
                          dWeight.data());
    expectClose(dWeight, ref::linearWeightGrad(dyRef, xRef),
                "linearWeightGrad " + name);
  }
}

// A bf16 result (moe-narrow-results) is the f32 result rounded, bit for bit,
// also where it is computed a block of rows at a time (5000 x 300); a bias
// does not go with one.
TEST(CpuBf16KernelsTest, LinearAndInputGradStoreTheirResultsRounded) {
  for (LinearShape c :
       {LinearShape{1, 1, 1}, LinearShape{7, 5, 3}, LinearShape{768, 128, 256},
        LinearShape{33, 130, 257}, LinearShape{0, 5, 3}, LinearShape{4, 0, 3},
        LinearShape{5000, 8, 300}}) {
    std::string name = shapeName({c.rows, c.in, c.out});
    Halves x = narrowed(randomFloats(c.rows * c.in, 1));
    Halves weight = narrowed(randomFloats(c.out * c.in, 2));
    Halves dy = narrowed(randomFloats(c.rows * c.out, 4));

    Floats y = output(c.rows * c.out);
    cpu::linear(x.data(), weight.data(), nullptr, c.rows, c.in, c.out,
                y.data());
    Halves y16(c.rows * c.out);
    cpu::linear(x.data(), weight.data(), nullptr, c.rows, c.in, c.out,
                y16.data());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y16[i].bits, moert::toBf16(y[i]).bits)
          << "linear " << name << " at " << i;

    Floats dx = output(c.rows * c.in);
    cpu::linearInputGrad(dy.data(), weight.data(), c.rows, c.in, c.out,
                         dx.data());
    Halves dx16(c.rows * c.in);
    cpu::linearInputGrad(dy.data(), weight.data(), c.rows, c.in, c.out,
                         dx16.data());
    for (size_t i = 0; i < dx.size(); ++i)
      ASSERT_EQ(dx16[i].bits, moert::toBf16(dx[i]).bits)
          << "linearInputGrad " << name << " at " << i;
  }
  Halves one = narrowed({1.0f}), y16(1);
  Floats bias = {0.5f};
  std::string error = errorOf([&] {
    cpu::linear(one.data(), one.data(), bias.data(), 1, 1, 1, y16.data());
  });
  EXPECT_NE(error.find("a bf16 result takes no bias"), std::string::npos)
      << error;
}

TEST(CpuBf16KernelsTest, AttentionAndGradMatchReference) {
  // Heads of odd size run widened to f32 where the CPU has bf16 dot
  // products (which read pairs), so both paths run on such a CPU; a head of
  // 64 and a sequence of 256 are the small benchmark model's.
  std::vector<AttentionCase> cases(std::begin(kAttentionCases),
                                   std::end(kAttentionCases));
  cases.insert(cases.end(),
               {{2, 19, 3, 1, 7}, {1, 33, 2, 2, 9}, {1, 256, 2, 1, 64}});
  for (AttentionCase c : cases)
    for (moert::AttentionMask mask : attentionMasks(c)) {
      std::string name = c.name(mask);
      std::vector<int64_t> qShape = c.queryShape(), kvShape = c.keyShape();
      int64_t qCount = c.queryCount(), kvCount = c.keyCount();
      AttentionInputs inputs = attentionInputs(c);
      Halves q = narrowed(inputs.q), k = narrowed(inputs.k);
      Halves v = narrowed(inputs.v), dOut = narrowed(inputs.dOut);
      Tensor qRef = bf16Tensor(qShape, q), kRef = bf16Tensor(kvShape, k);
      Tensor vRef = bf16Tensor(kvShape, v);

      std::vector<int64_t> lseShape = {c.batch, c.heads, c.seq};
      int64_t rows = c.batch * c.heads * c.seq;
      Floats out = output(qCount), lse = output(rows);
      cpu::attention(q.data(), k.data(), v.data(), nullptr, c.batch, c.seq,
                     c.heads, c.kvHeads, c.headDim, mask, out.data(),
                     lse.data());
      ref::AttentionResult expected = ref::attention(qRef, kRef, vRef, mask);
      expectBf16Close(out, expected.result.data, "attention " + name);
      expectBf16Close(lse, expected.lse.data, "attention lse " + name);
      // A bf16 result (moe-narrow-results) is the f32 one rounded, with the
      // same log-sum-exp.
      Halves out16(qCount);
      Floats lse16 = output(rows);
      cpu::attention(q.data(), k.data(), v.data(), nullptr, c.batch, c.seq,
                     c.heads, c.kvHeads, c.headDim, mask, out16.data(),
                     lse16.data());
      for (int64_t i = 0; i < qCount; ++i)
        ASSERT_EQ(out16[i].bits, moert::toBf16(out[i]).bits)
            << "attention, bf16 result " << name << " at " << i;
      EXPECT_EQ(lse16, lse) << "attention, bf16 result's lse " << name;

      // The gradients from the bf16 result, as mixed precision keeps it.
      Floats dq = output(qCount), dk = output(kvCount), dv = output(kvCount);
      cpu::attentionGrad(q.data(), k.data(), v.data(), out16.data(), lse.data(),
                         dOut.data(), c.batch, c.seq, c.heads, c.kvHeads,
                         c.headDim, mask, dq.data(), dk.data(), dv.data());
      ref::AttentionGrads grads = ref::attentionGrad(
          qRef, kRef, vRef, bf16Tensor(qShape, out16), f32(lseShape, lse), mask,
          bf16Tensor(qShape, dOut));
      expectBf16Close(dq, grads.dQuery.data, "attentionGrad dq " + name);
      expectBf16Close(dk, grads.dKey.data, "attentionGrad dk " + name);
      expectBf16Close(dv, grads.dValue.data, "attentionGrad dv " + name);
    }
}

TEST(CpuBf16KernelsTest, AttentionSinksMatchReference) {
  // Both paths (an odd head runs widened), a window, grouped heads; the
  // sinks' gradient from the bf16 result and its gradient.
  const AttentionCase cases[] = {{2, 19, 4, 2, 7}, {1, 33, 4, 1, 16}};
  for (AttentionCase c : cases)
    for (moert::AttentionMask mask :
         {moert::AttentionMask{true}, moert::AttentionMask{true, 5}}) {
      std::string name = c.name(mask);
      std::vector<int64_t> qShape = c.queryShape(), kvShape = c.keyShape();
      AttentionInputs inputs = attentionInputs(c);
      Halves q = narrowed(inputs.q), k = narrowed(inputs.k);
      Halves v = narrowed(inputs.v), dOut = narrowed(inputs.dOut);
      Floats sinks = {1.0f, -0.5f, 0.25f, 2.0f};
      Tensor sinksRef = f32({4}, sinks);
      std::vector<int64_t> lseShape = {c.batch, c.heads, c.seq};
      Floats out = output(c.queryCount());
      Floats lse = output(c.batch * c.heads * c.seq);
      cpu::attention(q.data(), k.data(), v.data(), sinks.data(), c.batch, c.seq,
                     c.heads, c.kvHeads, c.headDim, mask, out.data(),
                     lse.data());
      ref::AttentionResult expected =
          ref::attention(bf16Tensor(qShape, q), bf16Tensor(kvShape, k),
                         bf16Tensor(kvShape, v), mask, &sinksRef);
      expectBf16Close(out, expected.result.data, "attention " + name);
      expectBf16Close(lse, expected.lse.data, "attention lse " + name);

      Halves out16 = narrowed(out);
      Floats dSinks = output(4);
      cpu::attentionSinksGrad(sinks.data(), lse.data(), out16.data(),
                              dOut.data(), c.batch, c.seq, c.heads, c.headDim,
                              dSinks.data());
      Tensor expectedGrad = ref::attentionSinksGrad(
          sinksRef, f32(lseShape, lse), bf16Tensor(qShape, out16),
          bf16Tensor(qShape, dOut));
      expectBf16Close(dSinks, expectedGrad.data, "attentionSinksGrad " + name);
    }
}

TEST(CpuBf16KernelsTest, ExpertGemmMatchesTheWidenedProductForEveryCount) {
  // expertGemm splits rows and zero-pads the depth in blocks of 16: counts
  // around the blocks, both layouts of each operand, accumulation, and
  // leading dimensions past the matrices whose gaps hold NaN, which any
  // read outside an operand would carry into c.
  namespace detail = moert::cpu::detail;
  const int64_t n = 24;
  for (int64_t count : {1, 5, 15, 16, 17, 31, 32, 33, 47, 70})
    for (bool transA : {false, true})
      for (bool transB : {false, true})
        for (bool rowsVary : {true, false})
          for (float beta : {0.0f, 1.0f}) {
            int64_t m = rowsVary ? count : 20, k = rowsVary ? 20 : count;
            int64_t aRows = transA ? k : m, aCols = transA ? m : k;
            int64_t bRows = transB ? n : k, bCols = transB ? k : n;
            int64_t lda = aCols + 3, ldb = bCols + 5, ldc = n + 2;
            Halves a(aRows * lda, moert::toBf16(NAN)),
                b(bRows * ldb, moert::toBf16(NAN));
            Floats aValues = randomFloats(aRows * aCols, 11 + count),
                   bValues = randomFloats(bRows * bCols, 12 + count);
            Floats wideA(aRows * aCols), wideB(bRows * bCols);
            for (int64_t r = 0; r < aRows; ++r)
              for (int64_t c = 0; c < aCols; ++c) {
                a[r * lda + c] = moert::toBf16(aValues[r * aCols + c]);
                wideA[r * aCols + c] = moert::toFloat(a[r * lda + c]);
              }
            for (int64_t r = 0; r < bRows; ++r)
              for (int64_t c = 0; c < bCols; ++c) {
                b[r * ldb + c] = moert::toBf16(bValues[r * bCols + c]);
                wideB[r * bCols + c] = moert::toFloat(b[r * ldb + c]);
              }
            Floats c(m * ldc, 0.5f), expected(m * n, 0.5f);
            detail::expertGemm(transA, transB, m, n, k, a.data(), lda, b.data(),
                               ldb, beta, c.data(), ldc);
            detail::gemm(transA, transB, m, n, k, wideA.data(), aCols,
                         wideB.data(), bCols, beta, expected.data(), n);
            std::string name =
                "count " + std::to_string(count) + (transA ? " A^T" : " A") +
                (transB ? " B^T" : " B") + (rowsVary ? " rows" : " depth") +
                (beta != 0.0f ? " accumulating" : "");
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j)
                ASSERT_NEAR(c[i * ldc + j], expected[i * n + j],
                            1e-5f * (1.0f + std::abs(expected[i * n + j])))
                    << name << " at (" << i << ", " << j << ")";
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = n; j < ldc; ++j)
                ASSERT_EQ(c[i * ldc + j], 0.5f) << name << ": gap written";
          }
}

TEST(CpuBf16KernelsTest, ExpertFfnOnF32WeightsEqualsItOnTheirBf16Copies) {
  // weight-copies=per-expert: the kernels round each expert's f32 weights
  // as they use them, which must give the bits of bf16 copies made first.
  for (const Shape &s : kShapes) {
    std::string name = s.name();
    int64_t capacity = expertCapacity(s);
    std::vector<int64_t> counts = mixedFills(s.experts, capacity);
    int64_t rows = s.experts * capacity * s.hidden;
    int64_t weights = s.experts * s.ffn * s.hidden;
    Halves x = narrowed(randomFloats(rows, 1)),
           dy = narrowed(randomFloats(rows, 2));
    float scale = 1.0f / std::sqrt(static_cast<float>(s.hidden));
    Floats gate = randomFloats(weights, 3, scale),
           up = randomFloats(weights, 4, scale),
           down = randomFloats(weights, 5, scale);
    Halves gate16 = narrowed(gate), up16 = narrowed(up),
           down16 = narrowed(down);

    Floats y = output(rows), yCopies = output(rows);
    Halves projections(s.experts * 2 * capacity * s.ffn),
        projectionsCopies(projections.size());
    cpu::expertFfn(x.data(), gate.data(), up.data(), down.data(), counts.data(),
                   s.experts, capacity, s.hidden, s.ffn, y.data(),
                   projections.data());
    cpu::expertFfn(x.data(), gate16.data(), up16.data(), down16.data(),
                   counts.data(), s.experts, capacity, s.hidden, s.ffn,
                   yCopies.data(), projectionsCopies.data());
    EXPECT_EQ(filledRows<float>(y, counts, capacity, s.hidden),
              filledRows<float>(yCopies, counts, capacity, s.hidden))
        << "expertFfn " << name;
    for (size_t i = 0; i < projections.size(); ++i)
      ASSERT_EQ(projections[i].bits, projectionsCopies[i].bits)
          << "projections " << name << " at " << i;

    Floats dx = output(rows), dGate = output(weights), dUp = output(weights),
           dDown = output(weights);
    Floats dxCopies = output(rows), dGateCopies = output(weights),
           dUpCopies = output(weights), dDownCopies = output(weights);
    cpu::expertFfnGrad(x.data(), gate.data(), up.data(), down.data(),
                       projections.data(), dy.data(), counts.data(), s.experts,
                       capacity, s.hidden, s.ffn, dx.data(), dGate.data(),
                       dUp.data(), dDown.data());
    cpu::expertFfnGrad(x.data(), gate16.data(), up16.data(), down16.data(),
                       projections.data(), dy.data(), counts.data(), s.experts,
                       capacity, s.hidden, s.ffn, dxCopies.data(),
                       dGateCopies.data(), dUpCopies.data(),
                       dDownCopies.data());
    EXPECT_EQ(filledRows<float>(dx, counts, capacity, s.hidden),
              filledRows<float>(dxCopies, counts, capacity, s.hidden))
        << "expertFfnGrad dx " << name;
    EXPECT_EQ(dGate, dGateCopies) << "expertFfnGrad dGate " << name;
    EXPECT_EQ(dUp, dUpCopies) << "expertFfnGrad dUp " << name;
    EXPECT_EQ(dDown, dDownCopies) << "expertFfnGrad dDown " << name;
  }
}

TEST(CpuBf16KernelsTest, ExpertFfnAndGradMatchReferenceOnFilledRows) {
  // And no tokens: capacity 0, whose weight gradients are 0.
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({0, 5, 3, 1, 7});
  for (const Shape &s : shapes) {
    std::string name = s.name();
    int64_t capacity = expertCapacity(s);
    std::vector<int64_t> counts = mixedFills(s.experts, capacity);
    int64_t rows = s.experts * capacity * s.hidden;
    // Rows past counts are NaN for the kernel and zero for the reference.
    Halves x = narrowed(randomFloats(rows, 1)),
           dy = narrowed(randomFloats(rows, 2));
    Halves xRef = x, dyRef = dy;
    for (int64_t e = 0; e < s.experts; ++e)
      for (int64_t i = (e * capacity + counts[e]) * s.hidden;
           i < (e + 1) * capacity * s.hidden; ++i) {
        x[i] = dy[i] = moert::toBf16(NAN);
        xRef[i] = dyRef[i] = bf16{0};
      }
    float scale = 1.0f / std::sqrt(static_cast<float>(s.hidden));
    Halves gateProj =
        narrowed(randomFloats(s.experts * s.ffn * s.hidden, 3, scale));
    Halves upProj =
        narrowed(randomFloats(s.experts * s.ffn * s.hidden, 4, scale));
    Halves downProj =
        narrowed(randomFloats(s.experts * s.hidden * s.ffn, 5, scale));
    Tensor xT = bf16Tensor({s.experts, capacity, s.hidden}, xRef);
    Tensor gateT = bf16Tensor({s.experts, s.ffn, s.hidden}, gateProj);
    Tensor upT = bf16Tensor({s.experts, s.ffn, s.hidden}, upProj);
    Tensor downT = bf16Tensor({s.experts, s.hidden, s.ffn}, downProj);

    Floats y = output(rows);
    Halves projections(s.experts * 2 * capacity * s.ffn);
    cpu::expertFfn(x.data(), gateProj.data(), upProj.data(), downProj.data(),
                   counts.data(), s.experts, capacity, s.hidden, s.ffn,
                   y.data(), projections.data());
    expectBf16Close(filledRows<float>(y, counts, capacity, s.hidden),
                    filledRows(ref::expertFfn(xT, gateT, upT, downT).data,
                               counts, capacity, s.hidden),
                    "expertFfn " + name);
    EXPECT_TRUE(restUntouched(y, counts, capacity, s.hidden)) << name;

    Floats dx = output(rows), dGate = output(s.experts * s.ffn * s.hidden),
           dUp = output(s.experts * s.ffn * s.hidden),
           dDown = output(s.experts * s.hidden * s.ffn);
    cpu::expertFfnGrad(x.data(), gateProj.data(), upProj.data(),
                       downProj.data(), projections.data(), dy.data(),
                       counts.data(), s.experts, capacity, s.hidden, s.ffn,
                       dx.data(), dGate.data(), dUp.data(), dDown.data());
    ref::ExpertFfnGrads expected =
        ref::expertFfnGrad(xT, gateT, upT, downT,
                           bf16Tensor({s.experts, capacity, s.hidden}, dyRef));
    expectBf16Close(
        filledRows<float>(dx, counts, capacity, s.hidden),
        filledRows(expected.dInput.data, counts, capacity, s.hidden),
        "expertFfnGrad dx " + name);
    expectBf16Close(dGate, expected.dGateProj.data,
                    "expertFfnGrad dGate " + name);
    expectBf16Close(dUp, expected.dUpProj.data, "expertFfnGrad dUp " + name);
    expectBf16Close(dDown, expected.dDownProj.data,
                    "expertFfnGrad dDown " + name);
  }
}
