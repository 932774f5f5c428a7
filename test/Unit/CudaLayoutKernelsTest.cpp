//===- CudaLayoutKernelsTest.cpp - CUDA kernels of the last dimension -----===//
//
// moe.slice's, moe.pad's, moe.concat's and moe.concat_grad's CUDA kernels
// against their CPU kernels (moert::cpu, the reference of the CUDA target).
//
//===----------------------------------------------------------------------===//

#include "moert/CpuKernels.h"
#include "moert/CudaKernels.h"

#include "CudaTestUtils.h"

#include <gtest/gtest.h>

#include <string>

using namespace moe::cudatest;

namespace {

class CudaLayoutKernelsTest : public CudaTest {};

} // namespace

TEST_F(CudaLayoutKernelsTest, LastDimLayoutMatchesCpu) {
  // A part of one head on either side; copies are exact, and the gradient
  // of a shared part sums in head order on both targets.
  struct Case {
    int64_t outer, heads, lhsHeads, lhsWidth, rhsHeads, rhsWidth;
  };
  for (Case c : {Case{3, 4, 4, 6, 1, 2}, Case{2, 4, 1, 2, 4, 6},
                 Case{128, 8, 8, 48, 1, 16}}) {
    std::string name = std::to_string(c.outer) + "x" + std::to_string(c.heads);
    int64_t rows = c.outer * c.heads, width = c.lhsWidth + c.rhsWidth;
    Floats lhs = randomFloats(c.outer * c.lhsHeads * c.lhsWidth, 1);
    Floats rhs = randomFloats(c.outer * c.rhsHeads * c.rhsWidth, 2);
    Floats dy = randomFloats(rows * width, 3);
    DeviceBuffer<float> lhsGpu(lhs), rhsGpu(rhs), dyGpu(dy);

    DeviceBuffer<float> yGpu(rows * width);
    gpu::concat(lhsGpu.get(), rhsGpu.get(), rows, c.heads, c.lhsHeads,
                c.lhsWidth, c.rhsHeads, c.rhsWidth, yGpu.get());
    Floats y = output(rows * width);
    cpu::concat(lhs.data(), rhs.data(), rows, c.heads, c.lhsHeads, c.lhsWidth,
                c.rhsHeads, c.rhsWidth, y.data());
    expectClose(yGpu.download(), y, "concat " + name, 0.0);

    DeviceBuffer<float> dLhsGpu(lhs.size()), dRhsGpu(rhs.size());
    gpu::concatGrad(dyGpu.get(), rows, c.heads, c.lhsHeads, c.lhsWidth,
                    c.rhsHeads, c.rhsWidth, dLhsGpu.get(), dRhsGpu.get());
    Floats dLhs = output(lhs.size()), dRhs = output(rhs.size());
    cpu::concatGrad(dy.data(), rows, c.heads, c.lhsHeads, c.lhsWidth,
                    c.rhsHeads, c.rhsWidth, dLhs.data(), dRhs.data());
    expectClose(dLhsGpu.download(), dLhs, "concatGrad dLhs " + name, 0.0);
    expectClose(dRhsGpu.download(), dRhs, "concatGrad dRhs " + name, 0.0);

    DeviceBuffer<float> windowGpu(rows * c.rhsWidth), paddedGpu(rows * width);
    gpu::slice(dyGpu.get(), rows, width, c.lhsWidth, c.rhsWidth,
               windowGpu.get());
    gpu::pad(windowGpu.get(), rows, c.rhsWidth, c.lhsWidth, width,
             paddedGpu.get());
    Floats window = output(rows * c.rhsWidth), padded = output(rows * width);
    cpu::slice(dy.data(), rows, width, c.lhsWidth, c.rhsWidth, window.data());
    cpu::pad(window.data(), rows, c.rhsWidth, c.lhsWidth, width, padded.data());
    expectClose(windowGpu.download(), window, "slice " + name, 0.0);
    expectClose(paddedGpu.download(), padded, "pad " + name, 0.0);
  }
}
