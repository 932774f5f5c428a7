//===- TokenDataFuzzer.cpp - data files: text or llm.c tokens -------------===//
//
// Any file either gives tokens that batches can be drawn from or throws
// moert::Error.
//
//===----------------------------------------------------------------------===//

#include "moert/Error.h"
#include "moert/TokenData.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try {
    std::vector<int32_t> tokens =
        moert::parseTokens(std::vector<char>(data, data + size), "fuzz.bin")
            .ids;
    for (int32_t token : tokens)
      if (token < 0 || token > 65535)
        __builtin_trap();
    moert::BatchSampler sampler(std::move(tokens), 4, 0, "fuzz.bin");
    sampler.next(2);
  } catch (const moert::Error &) {
  }
  return 0;
}
