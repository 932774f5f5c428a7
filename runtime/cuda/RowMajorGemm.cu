//===- RowMajorGemm.cu - row-major GEMMs through cuBLAS -------------------===//
//
// rowMajorGemm (RowMajorGemm.h). A single product keeps the plain GEMM
// calls (cublasSgemm, cublasGemmEx); a batch is one strided batched call.
//
//===----------------------------------------------------------------------===//

#include "RowMajorGemm.h"
#include "Support.h"

#include "moert/Bf16.h"
#include "moert/Error.h"

#include <type_traits>

using namespace moert::cuda;

namespace {
template <typename T> cudaDataType_t typeOf() {
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}
} // namespace

template <typename T, typename Result>
void moert::cuda::rowMajorGemm(bool transA, bool transB, int64_t m, int64_t n,
                               int64_t k, const T *a, int64_t lda, const T *b,
                               int64_t ldb, float beta, Result *c, int64_t ldc,
                               const char *what, GemmBatch batch) {
  static_assert(std::is_same_v<T, Result> || std::is_same_v<Result, float>,
                "a bf16 result needs bf16 operands");
  if (m == 0 || n == 0 || batch.count == 0)
    return;
  if (beta != 0.0f && beta != 1.0f)
    moert::fail("{}: a GEMM scales its result by 0 or 1, not {}", what, beta);
  if (k == 0) { // C = beta C; cuBLAS leaves k == 0 to the caller
    if (beta == 0.0f)
      for (int64_t product = 0; product < batch.count; ++product)
        check(cudaMemset2DAsync(c + product * batch.strideC,
                                ldc * sizeof(Result), 0, n * sizeof(Result), m,
                                stream()),
              what);
    return; // beta is 1: C as it was
  }
  const float alpha = 1.0f;
  cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  constexpr bool inF32 = std::is_same_v<T, float>;
  cublasHandle_t handle = inF32 ? blas() : mixedBlas();
  if (batch.count > 1)
    check(cublasGemmStridedBatchedEx_64(
              handle, opB, opA, n, m, k, &alpha, b, typeOf<T>(), ldb,
              batch.strideB, a, typeOf<T>(), lda, batch.strideA, &beta, c,
              typeOf<Result>(), ldc, batch.strideC, batch.count,
              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          what);
  else if constexpr (inF32)
    check(cublasSgemm_64(handle, opB, opA, n, m, k, &alpha, b, ldb, a, lda,
                         &beta, c, ldc),
          what);
  else
    check(cublasGemmEx_64(handle, opB, opA, n, m, k, &alpha, b, typeOf<T>(),
                          ldb, a, typeOf<T>(), lda, &beta, c, typeOf<Result>(),
                          ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          what);
}

template void moert::cuda::rowMajorGemm(bool, bool, int64_t, int64_t, int64_t,
                                        const float *, int64_t, const float *,
                                        int64_t, float, float *, int64_t,
                                        const char *, GemmBatch);
template void moert::cuda::rowMajorGemm(bool, bool, int64_t, int64_t, int64_t,
                                        const moert::bf16 *, int64_t,
                                        const moert::bf16 *, int64_t, float,
                                        float *, int64_t, const char *,
                                        GemmBatch);
template void moert::cuda::rowMajorGemm(bool, bool, int64_t, int64_t, int64_t,
                                        const moert::bf16 *, int64_t,
                                        const moert::bf16 *, int64_t, float,
                                        moert::bf16 *, int64_t, const char *,
                                        GemmBatch);
