//===- ModelState.cpp - a compiled model's state and functions ------------===//

#include "moert/ModelState.h"
#include "moert/Error.h"
#include "moert/Random.h"
#include "moert/Safetensors.h"

#include <cstdlib>
#include <cstring>

moert::AlignedBuffer::AlignedBuffer(int64_t bytes) {
  int64_t rounded = (std::max<int64_t>(bytes, 1) + 63) / 64 * 64;
  storage.reset(std::aligned_alloc(64, rounded));
  if (!storage)
    fail("cannot allocate {} bytes", rounded);
  std::memset(storage.get(), 0, rounded);
}

void moert::AlignedBuffer::Free::operator()(void *pointer) const {
  std::free(pointer);
}

moert::TargetBuffer::TargetBuffer(const moe_model &model, int64_t bytes)
    : target(*model.target), bytes(bytes),
      storage(model.target->allocate(bytes, model.alignment),
              model.target->release) {
  if (!storage)
    fail("cannot allocate {} bytes of {} memory", bytes, target.name);
}

void moert::TargetBuffer::copyFromHost(const void *source) const {
  target.copy_to_target(storage.get(), source, bytes);
}

void moert::TargetBuffer::copyToHost(void *destination) const {
  target.copy_to_host(destination, storage.get(), bytes);
}

int64_t moert::tensorBytes(const moe_tensor_desc &tensor) {
  int64_t count = numElements(
      std::vector<int64_t>(tensor.shape, tensor.shape + tensor.rank));
  return count * (tensor.dtype == MOE_F32 || tensor.dtype == MOE_I32 ? 4 : 8);
}

void moert::initializeState(const moe_model &model, void *state, uint64_t seed,
                            int32_t rank) {
  for (int64_t g = 0; g < model.num_globals; ++g) {
    const moe_global &global = model.globals[g];
    char *base = static_cast<char *>(state) + global.offset;
    int64_t count =
        tensorBytes(global.tensor) /
        (global.tensor.dtype == MOE_F32 || global.tensor.dtype == MOE_I32 ? 4
                                                                          : 8);
    uint64_t key = streamKey(seed, global.tensor.name);
    // A part along axis 0 is a contiguous run of the whole tensor.
    int64_t offset = global.sharded ? rank * count : 0;
    for (int64_t i = 0; i < count; ++i) {
      double value = global.init_kind == MOE_INIT_NORMAL
                         ? global.init_value * normalAt(key, offset + i)
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
