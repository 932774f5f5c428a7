//===- GroupedGemm.h - the experts' grouped GEMM ----------------*- C++ -*-===//
//
// One GEMM per expert (group) with static shapes, whose row counts live in
// device memory: a train step is a CUDA graph, so the host never reads
// them. Tiles past a group's count are skipped, and its rows past the
// count are never read (they may hold garbage), except by the cuBLAS
// kernel, which computes whole groups. f32 operands run exact f32
// FMAs on CUDA cores, no TF32 (GroupedGemm.cu); bf16 operands run on
// tensor cores with f32 accumulation: wgmma on sm_90 (WarpGroupGemm.cu, or
// WarpGroupTmaGemm.cu), mma.sync elsewhere (TensorCoreGemm.cu), or
// cuBLAS over whole groups (TensorCoreGemm.cu). C is f32 either way.
// Internal to moert_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_CUDA_GROUPEDGEMM_H
#define MOERT_CUDA_GROUPEDGEMM_H

#include "moert/Bf16.h"

#include <cstdint>

namespace moert::cuda {

/// Which dimension a group's row count limits: M, the rows of op(A) and C
/// (an expert's tokens in the forward and the input gradients; C's rows
/// past the count hold no result: left unwritten, or, by the cuBLAS
/// kernel, products of the rows past the count), or K, the reduction (the
/// weight gradients: a group with no rows gets C = 0).
enum class CountedDim { M, K };

/// What a K-counted gemm's caller vouches for past each group's count.
enum class PastCount {
  /// Anything: a kernel must stop at the count.
  Garbage,
  /// Every product there is zero (one operand's values there are zero and
  /// the other's finite), so a kernel may sum the whole k.
  ZeroProducts
};

/// For each group g and each of `problems` products p:
///   c[p]_g = sum over the terms t of op(a[p][t]_g) op(b[p][t]_g),
/// row-major, with x_g = x + g * xStride and op(x) = x^T when transposed:
/// op(a) is [m, k] (a is [k, m] when transA), op(b) is [k, n] (b is [n, k]
/// when transB), c is [m, n]. Every problem and term shares the shapes,
/// leading dimensions and strides. T is the operands' type, float or bf16.
template <typename T> struct GroupedGemm {
  static constexpr int kMaxProblems = 2, kMaxTerms = 2;
  bool transA = false, transB = false;
  int64_t groups = 0, m = 0, n = 0, k = 0;
  /// Device [groups]: each group's count of the counted dimension, within
  /// [0, m] or [0, k] (the caller checked them).
  const int64_t *counts = nullptr;
  CountedDim counted = CountedDim::M;
  PastCount pastCount = PastCount::Garbage;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t strideA = 0, strideB = 0, strideC = 0;
  int problems = 1, terms = 1;
  const T *a[kMaxProblems][kMaxTerms] = {};
  const T *b[kMaxProblems][kMaxTerms] = {};
  float *c[kMaxProblems] = {};
};

/// The kernels of bf16 operands. Auto: autoTensorCoreKernel(); the others
/// (for tests and benchmarks) pick one, and the wgmma ones fail where they
/// are not available. WarpGroupTma stages the operands by TMA
/// (WarpGroupTmaGemm.cu), and runs WarpGroup where TMA cannot read them.
/// Cublas runs a gemm whose count limits M as cuBLAS's strided batched GEMM
/// over every group's m rows, the rows past the count too (a library GEMM
/// at its full rate, against the work of the empty rows: about a fifth of
/// a queue at capacity factor 1.25, most of a dropless layer's), and one
/// whose count limits K the same way where its products past the counts
/// are zero (PastCount::ZeroProducts), else on the kernel of Auto without
/// the variable.
enum class TensorCoreKernel { Auto, MmaSync, WarpGroup, WarpGroupTma, Cublas };

/// Whether this process's GPU runs the wgmma kernels: an sm_90 GPU (H100,
/// H200) and a build with sm_90a code, which wgmma needs.
bool warpGroupGemmAvailable();

/// Whether the TMA kernel reads `gemm`'s operands: this GPU's driver
/// encodes their tensor maps (16-byte aligned addresses and strides).
bool warpGroupTmaReads(const GroupedGemm<moert::bf16> &gemm);

/// The kernel Auto runs: wgmma where warpGroupGemmAvailable, else mma.sync;
/// MOE_CUDA_GROUPED_GEMM=mma.sync keeps mma.sync on an sm_90 GPU too (to
/// compare, or to tell a wgmma fault from another), =wgmma.tma runs the TMA
/// kernel there, =cublas the Cublas one on any GPU, and any value but
/// those and `auto` is an error.
TensorCoreKernel autoTensorCoreKernel();

/// Whether `kernel` (not Auto) runs `gemm` on cuBLAS over whole groups: a
/// gemm whose count limits M, or K with zero products past the counts.
bool runsOnCublas(const GroupedGemm<moert::bf16> &gemm,
                  TensorCoreKernel kernel);

/// Enqueues `gemm` on stream(); `name` names the launch in errors.
void groupedGemm(const GroupedGemm<float> &gemm, const char *name);
void groupedGemm(const GroupedGemm<moert::bf16> &gemm, const char *name,
                 TensorCoreKernel kernel = TensorCoreKernel::Auto);

} // namespace moert::cuda

#endif // MOERT_CUDA_GROUPEDGEMM_H
