//===- ModelState.h - a compiled model's state and functions ----*- C++ -*-===//

#ifndef MOERT_MODELSTATE_H
#define MOERT_MODELSTATE_H

#include "moert/GlobalPlacement.h"
#include "moert/ModelAbi.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace moert {

/// `bytes` (at least 1) of zeroed host memory aligned to `alignment` (a power
/// of two), released with releaseZeroed, or null. The pages are mapped
/// lazily (the threads that first write them fault them in), and buffers of
/// megabytes are backed by transparent huge pages where the kernel allows:
/// a model's gigabytes of state otherwise cost a page fault per 4 KiB.
void *allocateZeroed(int64_t bytes, int64_t alignment);
/// Releases memory from allocateZeroed (null is ignored).
void releaseZeroed(void *memory);

/// 64-byte aligned memory for a model's state or a function's arena.
struct AlignedBuffer {
  explicit AlignedBuffer(int64_t bytes);
  void *data() const { return storage.get(); }

private:
  struct Free {
    void operator()(void *pointer) const;
  };
  std::unique_ptr<void, Free> storage;
};

/// Memory of a model's target (moe_target): its state, an arena, or a
/// function's inputs and outputs.
class TargetBuffer {
public:
  /// `what` names the buffer in the error that a failed allocation raises.
  TargetBuffer(const moe_model &model, int64_t bytes, std::string_view what);
  void *data() const { return storage.get(); }
  int64_t size() const { return bytes; }
  /// Copies `size()` bytes from host memory `source` into the buffer.
  void copyFromHost(const void *source) const;
  /// Copies the buffer into host memory `destination` (`size()` bytes).
  void copyToHost(void *destination) const;

private:
  const moe_target &target;
  int64_t bytes;
  std::unique_ptr<void, void (*)(void *)> storage;
};

/// A model's state in its target's memory, and the state as the host reads
/// and writes it (initialization, checkpoints): the same memory on a target
/// whose memory is host memory (moe_target.host_memory), else a host copy.
/// In place, the CPU target saves the copy's time and memory, as large as
/// the parameters and both Adam moments together.
class StateBuffers {
public:
  explicit StateBuffers(const moe_model &model);
  /// The state the model's functions run on.
  void *target() const { return state.data(); }
  /// The state as the host sees it: a zeroed copy, or in place the
  /// target's allocation (the CPU target's is zeroed).
  void *host() const { return hostCopy ? hostCopy->data() : state.data(); }
  /// After the host wrote host(): the functions see what it wrote.
  void hostToTarget() const;
  /// Before the host reads host(): it holds what the functions wrote.
  void targetToHost() const;

private:
  TargetBuffer state;
  std::optional<AlignedBuffer> hostCopy;
};

/// Gives every global its initial value from its initializer, with the
/// streams of the reference interpreter (moe-run --seed): element i of a
/// normal global is std * normalAt(streamKey(seed, name), i).
/// A global split over ranks (moe_global.sharded, moe_global.part_axes)
/// gets this rank's part of the values of the whole tensor, so that any
/// number of ranks starts alike.
/// `state` must be zeroed (allocateZeroed): globals initialized to +0 (the
/// Adam moments) are not written.
void initializeState(const moe_model &model, void *state, uint64_t seed,
                     const RankGroup &group);

/// Gives `global`, one of `model`'s, the initial value initializeState
/// would, over whatever `state` holds there.
void initializeGlobal(const moe_model &model, const moe_global &global,
                      void *state, uint64_t seed, const RankGroup &group);

/// The function named `name`, or nullptr.
const moe_function *findFunction(const moe_model &model, std::string_view name);
/// The global named `name`, or nullptr.
const moe_global *findGlobal(const moe_model &model, std::string_view name);
/// The size in bytes of an element of the ABI's `dtype` (moe_dtype).
int64_t elementBytes(int32_t dtype);
/// The size in bytes of a tensor described by `tensor`.
int64_t tensorBytes(const moe_tensor_desc &tensor);

} // namespace moert

#endif // MOERT_MODELSTATE_H
