//===- TextBatches.cpp - byte-token batches from a text file --------------===//

#include "moert/TextBatches.h"
#include "moert/Error.h"

#include <fstream>
#include <iterator>

moert::TextBatches::TextBatches(const std::string &path, int64_t seqLenArg,
                                uint64_t seed)
    : seqLen(seqLenArg), offsets(seed, "text-batch-offsets") {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    fail(path, ": cannot open data file: ", describeErrno());
  tokens.assign(std::istreambuf_iterator<char>(file),
                std::istreambuf_iterator<char>());
  if (seqLen <= 0)
    fail(path, ": sequence length must be positive, got ", seqLen);
  if (static_cast<int64_t>(tokens.size()) < seqLen + 1)
    fail(path, ": data file has ", tokens.size(),
         " bytes, fewer than one window of ", seqLen + 1);
}

moert::TokenBatch moert::TextBatches::next(int64_t batch) {
  TokenBatch result{batch, seqLen, {}, {}};
  uint64_t windows = tokens.size() - static_cast<uint64_t>(seqLen);
  for (int64_t b = 0; b < batch; ++b) {
    uint64_t start = offsets.below(windows);
    for (int64_t s = 0; s < seqLen; ++s) {
      result.inputs.push_back(tokens[start + s]);
      result.targets.push_back(tokens[start + s + 1]);
    }
  }
  return result;
}
