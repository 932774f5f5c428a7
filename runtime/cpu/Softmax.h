//===- Softmax.h - softmax row helpers of the CPU kernels -------*- C++ -*-===//
//
// Shared by attention (AttentionKernels.cpp), cross-entropy and the dense
// SwiGLU (TransformerKernels.cpp, which defines them). expAndSum is a target
// clone: libm's expf is scalar and several times slower, so it uses
// Vectorize.h's polynomial exp on generic vectors, per instruction set.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CPU_SOFTMAX_H
#define MOERT_CPU_SOFTMAX_H

#include <cstdint>

namespace moert::cpu::detail {

/// The largest of x[0, n); -inf for n = 0.
float rowMax(const float *x, int64_t n);

/// out[i] = exp(x[i] * scale - shift); returns the sum of the out[i], in a
/// fixed order (by lane, then lanes in order). out may be x.
float expAndSum(const float *x, int64_t n, float scale, float shift,
                float *out);

/// expAndSum, to the bit, for rows whose x and out extend to n rounded up
/// to whole vectors (kLanes): their tail runs as one vector instead of lane
/// by lane, writing unspecified values to out past n.
float expAndSumPadded(const float *x, int64_t n, float scale, float shift,
                      float *out);

} // namespace moert::cpu::detail

#endif // MOERT_CPU_SOFTMAX_H
