//===- Layout.cpp - layout text -------------------------------------------===//

#include "moe/Estimate/Layout.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir::moe;

namespace {

llvm::Error layoutError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "--layout: " + message);
}

/// A positive integer below 2^31, all of `text`.
llvm::Expected<int64_t> parseCount(llvm::StringRef key, llvm::StringRef text) {
  int64_t value = 0;
  if (text.getAsInteger(10, value) || value <= 0)
    return layoutError(llvm::formatv(
        "'{0}' must be a positive integer, got '{1}'", key, text));
  if (value >= (1ll << 31))
    return layoutError(llvm::formatv(
        "'{0}' = {1} is too large (at most 2^31 - 1)", key, text));
  return value;
}

} // namespace

llvm::Expected<Layout> mlir::moe::parseLayout(llvm::StringRef text) {
  Layout layout;
  llvm::SmallVector<llvm::StringRef> items;
  text.split(items, ',', -1, /*KeepEmpty=*/false);
  llvm::StringSet<> seen;
  for (llvm::StringRef item : items) {
    item = item.trim();
    if (item.empty())
      continue;
    auto [key, value] = item.split('=');
    // A key given twice is a typo whichever value was meant.
    if (!seen.insert(key).second)
      return layoutError(llvm::formatv("'{0}' is given twice", key));
    if (key == "zero1" || key == "recompute") {
      if (item.contains('='))
        return layoutError(llvm::formatv("'{0}' takes no value", key));
      (key == "zero1" ? layout.zero1 : layout.recompute) = true;
      continue;
    }
    if (!item.contains('='))
      return layoutError(llvm::formatv("'{0}' is not KEY=VALUE", item));
    if (key == "split") {
      llvm::SmallVector<llvm::StringRef> counts;
      value.split(counts, '+');
      for (llvm::StringRef count : counts) {
        llvm::Expected<int64_t> layers = parseCount("split", count);
        if (!layers)
          return layers.takeError();
        layout.split.push_back(*layers);
      }
      continue;
    }
    int64_t *field = llvm::StringSwitch<int64_t *>(key)
                         .Case("dp", &layout.dp)
                         .Case("tp", &layout.tp)
                         .Case("ep", &layout.ep)
                         .Case("pp", &layout.pp)
                         .Case("mbs", &layout.microBatch)
                         .Default(nullptr);
    if (!field)
      return layoutError(llvm::formatv(
          "unknown key '{0}' (known: dp, tp, ep, pp, mbs, split, zero1, "
          "recompute)",
          key));
    llvm::Expected<int64_t> count = parseCount(key, value);
    if (!count)
      return count.takeError();
    *field = *count;
  }
  // dp x tp x pp must not overflow, nor count more GPUs than exist.
  if (layout.dp * layout.tp > (1ll << 31) / layout.pp)
    return layoutError(llvm::formatv("dp x tp x pp = {0} x {1} x {2} GPUs is "
                                     "more than 2^31",
                                     layout.dp, layout.tp, layout.pp));
  if (!layout.split.empty() &&
      static_cast<int64_t>(layout.split.size()) != layout.pp)
    return layoutError(llvm::formatv("split has {0} stages but pp is {1}",
                                     layout.split.size(), layout.pp));
  return layout;
}

std::string mlir::moe::formatLayout(const Layout &layout) {
  std::string text =
      llvm::formatv("dp={0},tp={1},ep={2},pp={3},mbs={4}", layout.dp, layout.tp,
                    layout.ep, layout.pp, layout.microBatch);
  if (!layout.split.empty())
    text +=
        ",split=" + llvm::join(llvm::map_range(layout.split,
                                               [](int64_t layers) {
                                                 return std::to_string(layers);
                                               }),
                               "+");
  if (layout.zero1)
    text += ",zero1";
  if (layout.recompute)
    text += ",recompute";
  return text;
}

std::vector<int64_t> mlir::moe::evenSplit(int64_t layers, int64_t stages) {
  std::vector<int64_t> split(stages, layers / stages);
  int64_t extra = layers % stages;
  // Middle stages first: outward from the centre.
  int64_t first = (stages - extra) / 2;
  for (int64_t i = 0; i < extra; ++i)
    ++split[first + i];
  return split;
}

std::vector<int64_t> mlir::moe::heavySplit(int64_t layers, int64_t stages,
                                           bool first) {
  std::vector<int64_t> split(stages, layers / stages);
  for (int64_t i = 0; i < layers % stages; ++i)
    ++split[first ? i : stages - 1 - i];
  return split;
}

std::string mlir::moe::compileOptionsOf(const Layout &layout,
                                        int64_t globalBatch) {
  if (layout.tp > 1 || layout.pp > 1)
    return "";
  int64_t microBatch = layout.microBatch * layout.dp;
  std::string options;
  if (layout.dp > 1)
    options += llvm::formatv("--expert-parallel {0} ", layout.dp).str();
  if (layout.dp > 1 && layout.ep != layout.dp)
    options += llvm::formatv("--expert-ranks {0} ", layout.ep).str();
  options += llvm::formatv("--batch-size {0}", microBatch).str();
  if (globalBatch / microBatch > 1)
    options +=
        llvm::formatv(" --micro-batches {0}", globalBatch / microBatch).str();
  // One rank has no optimizer state to share (moe-compile refuses it).
  if (layout.zero1 && layout.dp > 1)
    options += " --distributed-optimizer";
  if (layout.recompute)
    options += " --recompute";
  return options;
}
