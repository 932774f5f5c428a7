//===- SafetensorsFuzzer.cpp - the safetensors reader on any bytes --------===//
//
// Any input either parses or throws moert::Error; it never crashes, reads
// out of bounds (ASan) or overflows (UBSan).
//
//===----------------------------------------------------------------------===//

#include "moert/Error.h"
#include "moert/Safetensors.h"

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
  } catch (const moert::Error &) {
  }
  return 0;
}
