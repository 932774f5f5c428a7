//===- SafetensorsFuzzer.cpp - the safetensors reader on any bytes --------===//
//
// Any input either parses or throws moert::Error; it never crashes, reads
// out of bounds (ASan) or overflows (UBSan). Every tensor is also converted
// as weights are (BF16/F16/F64 to F32).
//
//===----------------------------------------------------------------------===//

#include "moert/Error.h"
#include "moert/Safetensors.h"
#include "moert/WeightSource.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try {
    moert::SafetensorsReader reader("fuzz.safetensors",
                                    std::vector<char>(data, data + size));
    // Touch every tensor's bytes: the reader promised they are in bounds.
    volatile unsigned char sum = 0;
    for (const moert::TensorView &tensor : reader.getTensors())
      for (size_t i = 0; i < tensor.bytes(); ++i)
        sum += static_cast<const unsigned char *>(tensor.data)[i];
    (void)sum; // the loads are the point, not the sum
    for (const moert::TensorView &tensor : reader.getTensors())
      if (tensor.dtype != moert::DType::I32 &&
          tensor.dtype != moert::DType::I64)
        moert::convertTensor(tensor, moert::DType::F32, "fuzz.safetensors");
  } catch (const moert::Error &) {
  }
  return 0;
}
