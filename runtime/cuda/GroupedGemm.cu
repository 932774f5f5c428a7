//===- GroupedGemm.cu - the experts' grouped GEMM in f32 ------------------===//
//
// groupedGemm over f32 operands on CUDA cores. A classic shared-memory
// SGEMM: 128x128 block tiles, k-steps of 8, 256 threads each computing an
// 8x8 register tile (two 4x4 quadrants 64 apart, so that its shared-memory
// reads are float4 broadcasts without bank conflicts), and the next
// k-step's tiles loaded into registers while the current one is computed
// (double-buffered shared memory, one barrier per step). blockIdx.z
// enumerates (problem, group); a block whose rows start past its group's
// count exits at once, and every load of a counted row or k index past the
// count reads 0 instead of memory.
//
// Each C element is one thread's sum over k in order, so results are
// deterministic; they differ from the CPU's oneDNN in summation order only.
//
//===----------------------------------------------------------------------===//

#include "GroupedGemm.h"
#include "GroupedGemmBlock.cuh"
#include "Support.h"

#include <cstdint>

using namespace moert::cuda;

namespace {

constexpr int kTileM = 128, kTileN = 128, kTileK = 8;
constexpr int kGemmThreads = 256;
/// Padding of the tiles stored transposed (k-major from a k-contiguous
/// source): their column stores then spread over the banks.
constexpr int kPad = 4;

/// Four floats at p, which are contiguous in memory: of them, those before
/// `available` (none when !valid) are read, the rest are 0. One float4 load
/// when p is 16-byte aligned (`vector`) and all four are there.
__device__ inline void load4(const float *p, bool valid, int64_t available,
                             bool vector, float (&v)[4]) {
  if (valid && vector && available >= 4) {
    float4 x = __ldg(reinterpret_cast<const float4 *>(p));
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
    return;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j)
    v[j] = valid && j < available ? __ldg(p + j) : 0.0f;
}

/// One thread's share of the k-steps' tiles of op(A) (outer index m) or
/// op(B) (outer index n), four values per step, stored to tile[k][outer].
/// `outerContiguous`: the matrix is stored k-major (A^T or B), so the thread
/// takes four adjacent outer indices of one k; else four adjacent k of one
/// outer index. The state is per thread, advanced a k-step at a time.
struct TileLoader {
  const float *next; // the thread's first value of the next step
  int64_t advance;   // floats from one step's first value to the next's
  int outerLeft;     // outer indices left from the thread's first one
  int kLeft;         // k indices left from the next step's thread's first k
  bool outerContiguous, vector;

  __device__ TileLoader(const float *data, int64_t ld, int64_t outer0,
                        int64_t outerLimit, int64_t kLimit,
                        bool outerContiguous, bool vector, int tid)
      : outerContiguous(outerContiguous), vector(vector) {
    int64_t outer = outer0 + (outerContiguous ? (tid % 32) * 4 : tid / 2);
    int64_t k = outerContiguous ? tid / 32 : (tid % 2) * 4;
    outerLeft =
        static_cast<int>(outerLimit - outer < 4 ? outerLimit - outer : 4);
    kLeft = static_cast<int>(kLimit - k);
    advance = outerContiguous ? kTileK * ld : kTileK;
    next = outerLeft > 0 && kLeft > 0
               ? data + (outerContiguous ? k * ld + outer : outer * ld + k)
               : data;
  }

  __device__ void load(float (&v)[4]) {
    bool valid = outerLeft > 0 && kLeft > 0;
    load4(next, valid, outerContiguous ? outerLeft : kLeft, vector, v);
    // Only a valid pointer moves: past the last step it may not be formed.
    if (valid && kLeft > kTileK)
      next += advance;
    kLeft -= kTileK;
  }

  template <int Width>
  __device__ void store(int tid, const float (&v)[4],
                        float (*tile)[Width]) const {
    if (outerContiguous) {
      *reinterpret_cast<float4 *>(&tile[tid / 32][(tid % 32) * 4]) =
          make_float4(v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j)
        tile[(tid % 2) * 4 + j][tid / 2] = v[j];
    }
  }
};

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kGemmThreads, 2)
    groupedGemmKernel(GroupedGemm<float> p, bool vector) {
  __shared__ __align__(16) float tileA[2][kTileK][kTileM + kPad];
  __shared__ __align__(16) float tileB[2][kTileK][kTileN + kPad];

  auto [group, problem, mLimit, kLimit, row0, col0] =
      blockOf(p, kTileM, kTileN);
  if (row0 >= mLimit)
    return; // past the group's rows: nothing to read or write

  int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  float acc[8][8] = {};
  int64_t steps = (kLimit + kTileK - 1) / kTileK;
  for (int term = 0; term < p.terms; ++term) {
    TileLoader a(p.a[problem][term] + group * p.strideA, p.lda, row0, mLimit,
                 kLimit, TransA, vector, tid);
    TileLoader b(p.b[problem][term] + group * p.strideB, p.ldb, col0, p.n,
                 kLimit, !TransB, vector, tid);
    if (steps == 0)
      continue;
    float nextA[4], nextB[4];
    a.load(nextA);
    b.load(nextB);
    a.store(tid, nextA, tileA[0]);
    b.store(tid, nextB, tileB[0]);
    __syncthreads();
    for (int64_t step = 0; step < steps; ++step) {
      int buffer = step % 2;
      bool more = step + 1 < steps;
      if (more) { // in flight while this step computes
        a.load(nextA);
        b.load(nextB);
      }
#pragma unroll
      for (int kk = 0; kk < kTileK; ++kk) {
        float4 a0 =
            *reinterpret_cast<const float4 *>(&tileA[buffer][kk][ty * 4]);
        float4 a1 =
            *reinterpret_cast<const float4 *>(&tileA[buffer][kk][64 + ty * 4]);
        float4 b0 =
            *reinterpret_cast<const float4 *>(&tileB[buffer][kk][tx * 4]);
        float4 b1 =
            *reinterpret_cast<const float4 *>(&tileB[buffer][kk][64 + tx * 4]);
        float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j)
            acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      if (more) {
        a.store(tid, nextA, tileA[1 - buffer]);
        b.store(tid, nextB, tileB[1 - buffer]);
      }
      __syncthreads();
    }
  }

  float *c = p.c[problem] + group * p.strideC;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    int64_t row = row0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    if (row >= mLimit)
      continue;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      int64_t col = col0 + half * 64 + tx * 4;
      float *out = c + row * p.ldc + col;
      if (vector && col + 4 <= p.n) {
        *reinterpret_cast<float4 *>(out) =
            make_float4(acc[i][half * 4], acc[i][half * 4 + 1],
                        acc[i][half * 4 + 2], acc[i][half * 4 + 3]);
        continue;
      }
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (col + j < p.n)
          out[j] = acc[i][half * 4 + j];
    }
  }
}

} // namespace

void moert::cuda::groupedGemm(const GroupedGemm<float> &gemm,
                              const char *name) {
  if (gemm.groups == 0 || gemm.m == 0 || gemm.n == 0 || gemm.problems == 0)
    return;
  // float4 accesses need every row start 16-byte aligned.
  bool vector = gemm.lda % 4 == 0 && gemm.ldb % 4 == 0 && gemm.ldc % 4 == 0 &&
                gemm.strideA % 4 == 0 && gemm.strideB % 4 == 0 &&
                gemm.strideC % 4 == 0;
  for (int problem = 0; problem < gemm.problems; ++problem) {
    vector = vector && aligned16(gemm.c[problem]);
    for (int term = 0; term < gemm.terms; ++term)
      vector = vector && aligned16(gemm.a[problem][term]) &&
               aligned16(gemm.b[problem][term]);
  }
  auto kernel = gemm.transA ? (gemm.transB ? groupedGemmKernel<true, true>
                                           : groupedGemmKernel<true, false>)
                            : (gemm.transB ? groupedGemmKernel<false, true>
                                           : groupedGemmKernel<false, false>);
  kernel<<<gridOf(gemm, kTileM, kTileN), kGemmThreads, 0, stream()>>>(gemm,
                                                                      vector);
  checkLaunch(name);
}
