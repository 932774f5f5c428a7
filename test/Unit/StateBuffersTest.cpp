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

class StateBuffersTest : public ::testing::Test {
protected:
  /// The state of a 256-byte model on the fake target, copies not counted
  /// yet.
  moert::StateBuffers stateOn(int32_t hostMemory) {
    target = moe_target{};
    target.name = "fake";
    target.allocate = allocate;
    target.release = moert::releaseZeroed;
    target.copy_to_target = copyToTarget;
    target.copy_to_host = copyToHost;
    target.host_memory = hostMemory;
    model = moe_model{};
    model.abi_version = MOE_ABI_VERSION;
    model.name = "state";
    model.alignment = 64;
    model.state_bytes = 256;
    model.target = &target;
    copiesToTarget = copiesToHost = 0;
    return moert::StateBuffers(model);
  }
  static float *floats(void *memory) { return static_cast<float *>(memory); }

  moe_target target;
  moe_model model;
};

TEST_F(StateBuffersTest, HostMemoryTargetIsReadAndWrittenInPlace) {
  moert::StateBuffers state = stateOn(1);
  EXPECT_EQ(state.host(), state.target());
  floats(state.host())[3] = 2.5f;
  state.hostToTarget();
  EXPECT_EQ(floats(state.target())[3], 2.5f);
  state.targetToHost();
  EXPECT_EQ(copiesToTarget + copiesToHost, 0);
}

TEST_F(StateBuffersTest, OtherTargetsGoThroughAZeroedHostCopy) {
  moert::StateBuffers state = stateOn(0);
  ASSERT_NE(state.host(), state.target());
  for (int64_t i = 0; i < 64; ++i)
    EXPECT_EQ(floats(state.host())[i], 0.0f);
  floats(state.host())[3] = 2.5f;
  state.hostToTarget();
  EXPECT_EQ(copiesToTarget, 1);
  EXPECT_EQ(floats(state.target())[3], 2.5f);
  floats(state.target())[5] = -1.0f;
  state.targetToHost();
  EXPECT_EQ(copiesToHost, 1);
  EXPECT_EQ(floats(state.host())[5], -1.0f);
}

} // namespace
