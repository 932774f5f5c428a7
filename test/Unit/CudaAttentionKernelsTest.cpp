//===- CudaAttentionKernelsTest.cpp - CUDA f32 attention kernels ----------===//
//
// moert::cuda's attention, its gradient and its sinks' gradient with f32
// operands against the CPU kernels on the same random inputs: sizes that
// are not multiples of the attention tiles, grouped-query attention,
// windows, and sinks (the bf16 kernels: CudaBf16KernelsTest.cpp).
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/CudaKernels.h"

#include "CudaTestUtils.h"

#include <gtest/gtest.h>

#include <string>

using namespace moe::cudatest;

namespace {
class CudaAttentionKernelsTest : public CudaTest {};
} // namespace

TEST_F(CudaAttentionKernelsTest, AttentionAndGradMatchCpu) {
  for (AttentionCase c : kAttentionCases)
    for (moert::AttentionMask mask : attentionMasks(c)) {
      std::string name = c.name(mask);
      int64_t qCount = c.queryCount(), kvCount = c.keyCount();
      auto [q, k, v, dOut] = attentionInputs(c);
      DeviceBuffer<float> qGpu(q), kGpu(k), vGpu(v), dOutGpu(dOut);

      int64_t rows = c.batch * c.heads * c.seq;
      DeviceBuffer<float> outGpu(qCount), lseGpu(rows);
      gpu::attention(qGpu.get(), kGpu.get(), vGpu.get(), nullptr, c.batch,
                     c.seq, c.heads, c.kvHeads, c.headDim, mask, outGpu.get(),
                     lseGpu.get());
      Floats out = output(qCount), lse = output(rows);
      cpu::attention(q.data(), k.data(), v.data(), nullptr, c.batch, c.seq,
                     c.heads, c.kvHeads, c.headDim, mask, out.data(),
                     lse.data());
      expectClose(outGpu.download(), out, "attention " + name, kGemmTolerance);
      expectClose(lseGpu.download(), lse, "attention lse " + name,
                  kGemmTolerance);

      // Both gradients from the CPU's forward.
      DeviceBuffer<float> outCpu(out), lseCpu(lse);
      DeviceBuffer<float> dqGpu(qCount), dkGpu(kvCount), dvGpu(kvCount);
      gpu::attentionGrad(qGpu.get(), kGpu.get(), vGpu.get(), outCpu.get(),
                         lseCpu.get(), dOutGpu.get(), c.batch, c.seq, c.heads,
                         c.kvHeads, c.headDim, mask, dqGpu.get(), dkGpu.get(),
                         dvGpu.get());
      Floats dq = output(qCount), dk = output(kvCount), dv = output(kvCount);
      cpu::attentionGrad(q.data(), k.data(), v.data(), out.data(), lse.data(),
                         dOut.data(), c.batch, c.seq, c.heads, c.kvHeads,
                         c.headDim, mask, dq.data(), dk.data(), dv.data());
      expectClose(dqGpu.download(), dq, "attentionGrad dq " + name,
                  kGemmTolerance);
      expectClose(dkGpu.download(), dk, "attentionGrad dk " + name,
                  kGemmTolerance);
      expectClose(dvGpu.download(), dv, "attentionGrad dv " + name,
                  kGemmTolerance);
    }
}

TEST_F(CudaAttentionKernelsTest, AttentionSinksMatchCpu) {
  // The online softmax starts from each head's sink; the sinks' gradient
  // reduces over every row of a head.
  const AttentionCase cases[] = {{2, 37, 4, 2, 24}, {1, 130, 4, 1, 64}};
  for (AttentionCase c : cases)
    for (moert::AttentionMask mask :
         {moert::AttentionMask{true}, moert::AttentionMask{true, 9}}) {
      std::string name = c.name(mask) + " sinks";
      int64_t qCount = c.queryCount(), rows = c.batch * c.heads * c.seq;
      auto [q, k, v, dOut] = attentionInputs(c);
      Floats sinks = {1.0f, -0.5f, 0.25f, 2.0f};
      DeviceBuffer<float> qGpu(q), kGpu(k), vGpu(v), dOutGpu(dOut);
      DeviceBuffer<float> sinksGpu(sinks), outGpu(qCount), lseGpu(rows);
      gpu::attention(qGpu.get(), kGpu.get(), vGpu.get(), sinksGpu.get(),
                     c.batch, c.seq, c.heads, c.kvHeads, c.headDim, mask,
                     outGpu.get(), lseGpu.get());
      Floats out = output(qCount), lse = output(rows);
      cpu::attention(q.data(), k.data(), v.data(), sinks.data(), c.batch, c.seq,
                     c.heads, c.kvHeads, c.headDim, mask, out.data(),
                     lse.data());
      expectClose(outGpu.download(), out, "attention " + name, kGemmTolerance);
      expectClose(lseGpu.download(), lse, "attention lse " + name,
                  kGemmTolerance);

      DeviceBuffer<float> outCpu(out), lseCpu(lse), dSinksGpu(c.heads);
      gpu::attentionSinksGrad(sinksGpu.get(), lseCpu.get(), outCpu.get(),
                              dOutGpu.get(), c.batch, c.seq, c.heads, c.headDim,
                              dSinksGpu.get());
      Floats dSinks = output(c.heads);
      cpu::attentionSinksGrad(sinks.data(), lse.data(), out.data(), dOut.data(),
                              c.batch, c.seq, c.heads, c.headDim,
                              dSinks.data());
      expectClose(dSinksGpu.download(), dSinks, "attentionSinksGrad " + name,
                  kGemmTolerance);
    }
}
