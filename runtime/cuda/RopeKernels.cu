//===- RopeKernels.cu - CUDA rotary position embedding --------------------===//
//
// moe.rope on the GPU: each (position, frequency) pair's cos and sin in
// double, as the CPU kernel's and the reference's, the unrotated dimensions
// of a partial rotation copied.
//
//===----------------------------------------------------------------------===//

#include "moert/CudaKernels.h"
#include "moert/RowMath.h"

#include "Support.h"

using namespace moert::cuda;

namespace {

/// One thread per (position, frequency): its cos and sin in double, applied
/// to every batch and head; then one per (position, unrotated dimension),
/// copied.
template <typename T>
__global__ void ropeKernel(const float *x, int64_t batch, int64_t seq,
                           int64_t heads, int64_t headDim, int64_t rotaryDim,
                           double theta, moert::RopeScaling scaling,
                           bool inverse, bool interleaved, T *y) {
  int64_t half = rotaryDim / 2, kept = headDim - rotaryDim;
  for (int64_t e : gridStride(seq * (half + kept))) {
    int64_t position = e / (half + kept), i = e % (half + kept);
    if (i >= half) {
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          int64_t at = ((b * seq + position) * heads + h) * headDim + half + i;
          y[at] = moert::storedAs<T>(x[at]);
        }
      continue;
    }
    double angle = static_cast<double>(position) *
                   moert::rows::ropeFrequency(i, rotaryDim, theta, scaling);
    double sine, cosine;
    sincos(angle, &sine, &cosine);
    float c = static_cast<float>(cosine * scaling.attentionFactor);
    float s =
        static_cast<float>((inverse ? -sine : sine) * scaling.attentionFactor);
    int64_t first, second;
    moert::rows::ropePair(i, half, interleaved, first, second);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t at = ((b * seq + position) * heads + h) * headDim;
        float x1 = x[at + first], x2 = x[at + second];
        y[at + first] = moert::storedAs<T>(x1 * c - x2 * s);
        y[at + second] = moert::storedAs<T>(x2 * c + x1 * s);
      }
  }
}

} // namespace

template <typename T>
void moert::cuda::rope(const float *x, int64_t batch, int64_t seq,
                       int64_t heads, int64_t headDim, int64_t rotaryDim,
                       double theta, RopeScaling scaling, bool inverse,
                       bool interleaved, T *y) {
  // rotary_dim is even (the verifier checks it).
  int64_t items = seq * (headDim - rotaryDim / 2);
  if (items == 0 || batch == 0 || heads == 0)
    return;
  ropeKernel<<<blocksFor(items), kThreads, 0, stream()>>>(
      x, batch, seq, heads, headDim, rotaryDim, theta, scaling, inverse,
      interleaved, y);
  checkLaunch("moert::cuda::rope");
}
template void moert::cuda::rope(const float *, int64_t, int64_t, int64_t,
                                int64_t, int64_t, double, RopeScaling, bool,
                                bool, float *);
template void moert::cuda::rope(const float *, int64_t, int64_t, int64_t,
                                int64_t, int64_t, double, RopeScaling, bool,
                                bool, bf16 *);
