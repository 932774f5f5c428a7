//===- Gemm.cpp - the GEMM of the CPU kernels -----------------------------===//

#include "Gemm.h"
#include "moert/CpuKernels.h"
#include "moert/Error.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

void moert::cpu::detail::gemm(bool transA, bool transB, int64_t m, int64_t n,
                              int64_t k, const float *a, int64_t lda,
                              const float *b, int64_t ldb, float beta, float *c,
                              int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  dnnl_status_t status = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m,
                                    n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success)
    fail("oneDNN sgemm failed with status {} for m={} n={} k={}",
         static_cast<int>(status), m, n, k);
}

namespace {

/// A bf16 matmul primitive's shape; a thread keeps one primitive per key.
struct MatmulKey {
  bool transA, transB;
  int64_t m, n, k, lda, ldb, ldc;
  bool accumulate;
  bool operator==(const MatmulKey &other) const {
    return std::tie(transA, transB, m, n, k, lda, ldb, ldc, accumulate) ==
           std::tie(other.transA, other.transB, other.m, other.n, other.k,
                    other.lda, other.ldb, other.ldc, other.accumulate);
  }
};

struct MatmulKeyHash {
  size_t operator()(const MatmulKey &key) const {
    size_t hash = key.transA * 2 + key.transB + key.accumulate * 4;
    for (int64_t value : {key.m, key.n, key.k, key.lda, key.ldb, key.ldc})
      hash = hash * 1000003u ^ std::hash<int64_t>()(value);
    return hash;
  }
};

const dnnl::engine &cpuEngine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Bf16Matmul {
  dnnl::matmul primitive;
  dnnl::memory::desc a, b, c;
};

/// The primitive for `key`, or none when this CPU has no bf16 matmul.
const std::optional<Bf16Matmul> &bf16Matmul(const MatmulKey &key) {
  thread_local std::unordered_map<MatmulKey, std::optional<Bf16Matmul>,
                                  MatmulKeyHash>
      primitives;
  auto [entry, inserted] = primitives.try_emplace(key);
  if (!inserted)
    return entry->second;
  using dims = dnnl::memory::dims;
  using dt = dnnl::memory::data_type;
  // Row-major with leading dimensions; a transposed operand swaps strides.
  auto matrix = [](int64_t rows, int64_t cols, bool transposed, int64_t ld,
                   dt type) {
    return dnnl::memory::desc(dims{rows, cols}, type,
                              transposed ? dims{1, ld} : dims{ld, 1});
  };
  dnnl::primitive_attr attributes;
  if (key.accumulate) {
    dnnl::post_ops sum;
    sum.append_sum(1.0f);
    attributes.set_post_ops(sum);
  }
  dnnl::memory::desc a = matrix(key.m, key.k, key.transA, key.lda, dt::bf16);
  dnnl::memory::desc b = matrix(key.k, key.n, key.transB, key.ldb, dt::bf16);
  dnnl::memory::desc c = matrix(key.m, key.n, false, key.ldc, dt::f32);
  try {
    dnnl::matmul::primitive_desc descriptor(dnnl::matmul::desc(a, b, c),
                                            attributes, cpuEngine());
    // On AVX-512 without bf16 instructions oneDNN emulates bf16, slower
    // than the widened f32 GEMM: only bf16 and AMX implementations count.
    std::string implementation = descriptor.impl_info_str();
    if (implementation.find("bf16") != std::string::npos ||
        implementation.find("amx") != std::string::npos)
      entry->second = Bf16Matmul{dnnl::matmul(descriptor), a, b, c};
  } catch (const dnnl::error &error) {
    if (error.status != dnnl_unimplemented)
      moert::fail("oneDNN cannot make a bf16 matmul for m={} n={} k={}: {}",
                  key.m, key.n, key.k, error.what());
  }
  return entry->second;
}

/// Copies a rows x cols matrix with leading dimension `ld` into a dense f32
/// one (thread-local scratch, kept between calls).
const float *widened(const moert::bf16 *matrix, int64_t rows, int64_t cols,
                     int64_t ld, std::vector<float> &scratch) {
  if (scratch.size() < static_cast<size_t>(rows * cols))
    scratch.resize(rows * cols);
  if (ld == cols) // one call: large matrices convert on every thread
    moert::cpu::convert(matrix, rows * cols, scratch.data());
  else
    for (int64_t r = 0; r < rows; ++r)
      moert::cpu::convert(matrix + r * ld, cols, scratch.data() + r * cols);
  return scratch.data();
}

/// Copies a rows x cols matrix with leading dimension `ld` into the top
/// left corner of a dense, otherwise zero paddedRows x paddedCols one.
const moert::bf16 *zeroPadded(const moert::bf16 *matrix, int64_t rows,
                              int64_t cols, int64_t ld, int64_t paddedRows,
                              int64_t paddedCols,
                              std::vector<moert::bf16> &scratch) {
  scratch.assign(paddedRows * paddedCols, moert::bf16{0});
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(scratch.data() + r * paddedCols, matrix + r * ld,
                cols * sizeof(moert::bf16));
  return scratch.data();
}

/// The granule of an expert GEMM's varying size (expertGemm).
constexpr int64_t kCountBlock = 16;

} // namespace

void moert::cpu::detail::gemm(bool transA, bool transB, int64_t m, int64_t n,
                              int64_t k, const bf16 *a, int64_t lda,
                              const bf16 *b, int64_t ldb, float beta, float *c,
                              int64_t ldc) {
  // Empty products and other scales than 0 and 1 are not worth a primitive;
  // without a bf16 matmul, asking oneDNN for each new shape (expert row
  // counts change every step) would cost a failed primitive each time.
  bool primitive = hasBf16Matmul() && m > 0 && n > 0 && k > 0 &&
                   (beta == 0.0f || beta == 1.0f);
  const std::optional<Bf16Matmul> *matmul =
      primitive
          ? &bf16Matmul({transA, transB, m, n, k, lda, ldb, ldc, beta != 0.0f})
          : nullptr;
  if (!matmul || !*matmul) {
    thread_local std::vector<float> wideA, wideB;
    const float *fa = widened(a, transA ? k : m, transA ? m : k, lda, wideA);
    const float *fb = widened(b, transB ? n : k, transB ? k : n, ldb, wideB);
    gemm(transA, transB, m, n, k, fa, transA ? m : k, fb, transB ? k : n, beta,
         c, ldc);
    return;
  }
  const Bf16Matmul &product = **matmul;
  thread_local dnnl::stream stream(cpuEngine());
  auto memory = [&](const dnnl::memory::desc &desc, const void *data) {
    return dnnl::memory(desc, cpuEngine(), const_cast<void *>(data));
  };
  product.primitive.execute(stream, {{DNNL_ARG_SRC, memory(product.a, a)},
                                     {DNNL_ARG_WEIGHTS, memory(product.b, b)},
                                     {DNNL_ARG_DST, memory(product.c, c)}});
  stream.wait();
}

void moert::cpu::detail::gemm(bool transA, bool transB, int64_t m, int64_t n,
                              int64_t k, const bf16 *a, int64_t lda,
                              const bf16 *b, int64_t ldb, bf16 *c) {
  // Blocks of rows keep the scratch, which the memory plan does not see,
  // at 4 MB whatever the product's size.
  constexpr int64_t kScratchFloats = int64_t(1) << 20;
  int64_t blockRows =
      std::max<int64_t>(1, kScratchFloats / std::max<int64_t>(n, 1));
  thread_local std::vector<float> accumulated;
  accumulated.resize(std::min(m, blockRows) * n);
  for (int64_t row = 0; row < m; row += blockRows) {
    int64_t rows = std::min(blockRows, m - row);
    gemm(transA, transB, rows, n, k, transA ? a + row : a + row * lda, lda, b,
         ldb, 0.0f, accumulated.data(), n);
    moert::cpu::convert(accumulated.data(), rows * n, c + row * n);
  }
}

void moert::cpu::detail::expertGemm(bool transA, bool transB, int64_t m,
                                    int64_t n, int64_t k, const float *a,
                                    int64_t lda, const float *b, int64_t ldb,
                                    float beta, float *c, int64_t ldc) {
  gemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

void moert::cpu::detail::expertGemm(bool transA, bool transB, int64_t m,
                                    int64_t n, int64_t k, const bf16 *a,
                                    int64_t lda, const bf16 *b, int64_t ldb,
                                    float beta, float *c, int64_t ldc) {
  if (!hasBf16Matmul() || m == 0 || n == 0 || k == 0) {
    gemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Rows split: the two products write disjoint rows of c.
  int64_t blockRows = m / kCountBlock * kCountBlock;
  if (blockRows > 0 && blockRows < m) {
    gemm(transA, transB, blockRows, n, k, a, lda, b, ldb, beta, c, ldc);
    expertGemm(transA, transB, m - blockRows, n, k,
               transA ? a + blockRows : a + blockRows * lda, lda, b, ldb, beta,
               c + blockRows * ldc, ldc);
    return;
  }
  // A split depth would read and write all of c twice: zeros are cheaper.
  int64_t depth = (k + kCountBlock - 1) / kCountBlock * kCountBlock;
  if (depth != k) {
    thread_local std::vector<bf16> paddedA, paddedB;
    a = transA ? zeroPadded(a, k, m, lda, depth, m, paddedA)
               : zeroPadded(a, m, k, lda, m, depth, paddedA);
    b = transB ? zeroPadded(b, n, k, ldb, n, depth, paddedB)
               : zeroPadded(b, k, n, ldb, depth, n, paddedB);
    lda = transA ? m : depth;
    ldb = transB ? depth : n;
  }
  gemm(transA, transB, m, n, depth, a, lda, b, ldb, beta, c, ldc);
}

bool moert::cpu::detail::hasBf16Matmul() {
  // Asked once per process, and said once: without it a bf16 build saves
  // memory but no time (0.85-1.05x an f32 build, measured).
  static const bool has = [] {
    bool found =
        bf16Matmul({false, true, 16, 16, 16, 16, 16, 16, false}).has_value();
    if (!found)
      std::fprintf(stderr, "note: this CPU has no bf16 matmul (AVX-512 BF16 "
                           "or AMX): bf16 GEMMs widen their operands to f32, so "
                           "bf16 saves memory, not time\n");
    return found;
  }();
  return has;
}
