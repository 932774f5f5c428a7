//===- Gemm.cpp - the GEMM of the CPU kernels -----------------------------===//

#include "Gemm.h"
#include "moert/Error.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>

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
