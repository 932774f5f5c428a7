//===- ModelState.cpp - a compiled model's state and functions ------------===//

#include "moert/ModelState.h"
#include "moert/Error.h"
#include "moert/HostThreads.h"
#include "moert/Random.h"
#include "moert/Safetensors.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

/// What releaseZeroed needs, just below the pointer allocateZeroed returns.
struct Mapping {
  void *start;
  size_t bytes;
};

} // namespace

void *moert::allocateZeroed(int64_t bytes, int64_t alignment) {
  constexpr int64_t kHugePage = int64_t(2) << 20;
  if (bytes >= kHugePage)
    alignment = std::max(alignment, kHugePage);
  alignment = std::max<int64_t>(alignment, sizeof(Mapping));
  int64_t rounded =
      (std::max<int64_t>(bytes, 1) + alignment - 1) / alignment * alignment;
  // Fresh anonymous pages read as zero and are faulted in on first touch,
  // by whichever thread writes them first: no memset of gigabytes here.
  size_t mapped = static_cast<size_t>(rounded + 2 * alignment);
  void *start = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (start == MAP_FAILED)
    return nullptr;
  uintptr_t first = reinterpret_cast<uintptr_t>(start) + sizeof(Mapping);
  auto *memory =
      reinterpret_cast<char *>((first + alignment - 1) / alignment * alignment);
  reinterpret_cast<Mapping *>(memory)[-1] = {start, mapped};
  if (bytes >= kHugePage)
    madvise(memory, rounded, MADV_HUGEPAGE); // a hint: failure is harmless
  return memory;
}

void moert::releaseZeroed(void *memory) {
  if (!memory)
    return;
  Mapping mapping = reinterpret_cast<Mapping *>(memory)[-1];
  munmap(mapping.start, mapping.bytes);
}

moert::AlignedBuffer::AlignedBuffer(int64_t bytes) {
  storage.reset(allocateZeroed(bytes, 64));
  if (!storage)
    fail("cannot allocate {} bytes", bytes);
}

void moert::AlignedBuffer::Free::operator()(void *pointer) const {
  releaseZeroed(pointer);
}

moert::TargetBuffer::TargetBuffer(const moe_model &model, int64_t bytes,
                                  std::string_view what)
    : target(*model.target), bytes(bytes),
      storage(nullptr, model.target->release) {
  std::string why;
  try {
    storage.reset(target.allocate(bytes, model.alignment));
  } catch (const AllocationError &error) {
    why = std::string(": ") + error.what();
  }
  if (!storage)
    fail("cannot allocate {} of {} memory for {}{}", describeBytes(bytes),
         target.name, what, why);
}

void moert::TargetBuffer::copyFromHost(const void *source) const {
  target.copy_to_target(storage.get(), source, bytes);
}

void moert::TargetBuffer::copyToHost(void *destination) const {
  target.copy_to_host(destination, storage.get(), bytes);
}

moert::StateBuffers::StateBuffers(const moe_model &model)
    : state(model, model.state_bytes,
            "the model state (parameters and optimizer moments)") {
  if (!model.target->host_memory)
    hostCopy.emplace(model.state_bytes);
}

void moert::StateBuffers::hostToTarget() const {
  if (hostCopy)
    state.copyFromHost(hostCopy->data());
}

void moert::StateBuffers::targetToHost() const {
  if (hostCopy)
    state.copyToHost(hostCopy->data());
}

int64_t moert::elementBytes(int32_t dtype) {
  return dtype == MOE_F32 || dtype == MOE_I32 ? 4 : 8;
}

int64_t moert::tensorBytes(const moe_tensor_desc &tensor) {
  int64_t count = numElements(
      std::vector<int64_t>(tensor.shape, tensor.shape + tensor.rank));
  return count * elementBytes(tensor.dtype);
}

namespace {

/// Writes elements [begin, end) of `global`'s initial values at `base`.
void initializeRange(const moe_global &global, char *base, uint64_t key,
                     int64_t offset, int64_t begin, int64_t end) {
  // The state is zeroed already: +0 needs no write (and no page faults).
  if (global.init_kind == MOE_INIT_CONSTANT && global.init_value == 0.0 &&
      !std::signbit(global.init_value))
    return;
  if (global.init_kind == MOE_INIT_CONSTANT && global.tensor.dtype == MOE_F32) {
    std::fill(reinterpret_cast<float *>(base) + begin,
              reinterpret_cast<float *>(base) + end,
              static_cast<float>(global.init_value));
    return;
  }
  if (global.init_kind == MOE_INIT_NORMAL && global.tensor.dtype == MOE_F32) {
    moert::fillNormal(key, offset + begin, end - begin, global.init_value,
                      reinterpret_cast<float *>(base) + begin);
    return;
  }
  for (int64_t i = begin; i < end; ++i) {
    double value = global.init_kind == MOE_INIT_NORMAL
                       ? global.init_value * moert::normalAt(key, offset + i)
                       : global.init_value;
    switch (global.tensor.dtype) {
    case MOE_F32:
      reinterpret_cast<float *>(base)[i] = static_cast<float>(value);
      break;
    case MOE_F64:
      reinterpret_cast<double *>(base)[i] = value;
      break;
    case MOE_I32:
      reinterpret_cast<int32_t *>(base)[i] = static_cast<int32_t>(value);
      break;
    default:
      reinterpret_cast<int64_t *>(base)[i] = static_cast<int64_t>(value);
    }
  }
}

/// Where this rank's values of a global come from in the whole tensor's
/// stream: its elements, the stream's key and its first element's index.
struct RankValues {
  int64_t count;
  uint64_t key;
  int64_t offset;
};

RankValues rankValuesOf(const moe_model &model, const moe_global &global,
                        uint64_t seed, const moert::RankGroup &group) {
  int64_t elementBytes = moert::elementBytes(global.tensor.dtype);
  // A rank's part is a contiguous run of the whole tensor; an optimizer
  // part's padding after it stays zero.
  moert::GlobalPlacement placement = moert::placementOf(model, global, group);
  return {placement.runBytes / elementBytes,
          moert::streamKey(seed, global.tensor.name),
          placement.offsetBytes / elementBytes};
}

} // namespace

void moert::initializeState(const moe_model &model, void *state, uint64_t seed,
                            const RankGroup &group) {
  // Every value is a pure function of (seed, name, index), so chunks of all
  // globals run on every core in any order and give the same bits: a 285M
  // parameter model started in 12 s on one core.
  struct Chunk {
    const moe_global *global;
    RankValues values;
    int64_t begin, end;
  };
  constexpr int64_t kChunkElements = int64_t(1) << 18;
  std::vector<Chunk> chunks;
  for (int64_t g = 0; g < model.num_globals; ++g) {
    const moe_global &global = model.globals[g];
    RankValues values = rankValuesOf(model, global, seed, group);
    for (int64_t begin = 0; begin < values.count; begin += kChunkElements)
      chunks.push_back({&global, values, begin,
                        std::min(values.count, begin + kChunkElements)});
  }
  forEachOnHostThreads(chunks.size(), [&](size_t c) {
    const Chunk &chunk = chunks[c];
    initializeRange(
        *chunk.global, static_cast<char *>(state) + chunk.global->offset,
        chunk.values.key, chunk.values.offset, chunk.begin, chunk.end);
  });
}

void moert::initializeGlobal(const moe_model &model, const moe_global &global,
                             void *state, uint64_t seed,
                             const RankGroup &group) {
  char *data = static_cast<char *>(state) + global.offset;
  std::memset(data, 0, global.bytes);
  RankValues values = rankValuesOf(model, global, seed, group);
  initializeRange(global, data, values.key, values.offset, 0, values.count);
}

const moe_function *moert::findFunction(const moe_model &model,
                                        std::string_view name) {
  for (int64_t i = 0; i < model.num_functions; ++i)
    if (name == model.functions[i].name)
      return &model.functions[i];
  return nullptr;
}

const moe_global *moert::findGlobal(const moe_model &model,
                                    std::string_view name) {
  for (int64_t i = 0; i < model.num_globals; ++i)
    if (name == model.globals[i].tensor.name)
      return &model.globals[i];
  return nullptr;
}
