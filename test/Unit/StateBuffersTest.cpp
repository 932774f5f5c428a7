//===- StateBuffersTest.cpp - the state's host view, in place or copied ---===//

#include "moert/ModelState.h"

#include <gtest/gtest.h>

#include <cstring>

namespace {

// A fake target whose memory is host memory and whose copies are counted,
// so that the tests see which copies StateBuffers makes.
int copiesToTarget = 0, copiesToHost = 0;

void *allocate(int64_t bytes, int64_t alignment) {
  return moert::allocateZeroed(bytes, alignment);
}
void copyToTarget(void *destination, const void *source, int64_t bytes) {
  ++copiesToTarget;
  std::memcpy(destination, source, bytes);
}
void copyToHost(void *destination, const void *source, int64_t bytes) {
  ++copiesToHost;
  std::memcpy(destination, source, bytes);
}

moe_target fakeTarget(int32_t hostMemory) {
  moe_target target{};
  target.name = "fake";
  target.allocate = allocate;
  target.release = moert::releaseZeroed;
  target.copy_to_target = copyToTarget;
  target.copy_to_host = copyToHost;
  target.host_memory = hostMemory;
  return target;
}

moe_model modelOn(const moe_target &target) {
  moe_model model{};
  model.abi_version = MOE_ABI_VERSION;
  model.name = "state";
  model.alignment = 64;
  model.state_bytes = 256;
  model.target = &target;
  return model;
}

TEST(StateBuffersTest, HostMemoryTargetIsReadAndWrittenInPlace) {
  moe_target target = fakeTarget(1);
  moe_model model = modelOn(target);
  copiesToTarget = copiesToHost = 0;
  moert::StateBuffers state(model);
  EXPECT_EQ(state.host(), state.target());
  static_cast<float *>(state.host())[3] = 2.5f;
  state.hostToTarget();
  EXPECT_EQ(static_cast<float *>(state.target())[3], 2.5f);
  state.targetToHost();
  EXPECT_EQ(copiesToTarget + copiesToHost, 0);
}

TEST(StateBuffersTest, OtherTargetsGoThroughAZeroedHostCopy) {
  moe_target target = fakeTarget(0);
  moe_model model = modelOn(target);
  copiesToTarget = copiesToHost = 0;
  moert::StateBuffers state(model);
  ASSERT_NE(state.host(), state.target());
  for (int64_t i = 0; i < 64; ++i)
    EXPECT_EQ(static_cast<float *>(state.host())[i], 0.0f);
  static_cast<float *>(state.host())[3] = 2.5f;
  state.hostToTarget();
  EXPECT_EQ(copiesToTarget, 1);
  EXPECT_EQ(static_cast<float *>(state.target())[3], 2.5f);
  static_cast<float *>(state.target())[5] = -1.0f;
  state.targetToHost();
  EXPECT_EQ(copiesToHost, 1);
  EXPECT_EQ(static_cast<float *>(state.host())[5], -1.0f);
}

} // namespace
