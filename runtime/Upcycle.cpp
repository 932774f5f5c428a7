//===- Upcycle.cpp - a MoE model's initial weights from a dense one -------===//

#include "moert/Upcycle.h"

#include "moert/Error.h"
#include "moert/Random.h"

#include <fmt/format.h>

#include <cstring>
#include <sstream>

using namespace moert;

std::string moert::formatUpcycleRule(const UpcycleRule &rule) {
  switch (rule.kind) {
  case UpcycleRule::Kind::Copy:
    return "copy " + rule.source +
           (rule.scale != 1 ? fmt::format(" scale={}", rule.scale) : "");
  case UpcycleRule::Kind::Experts:
    return fmt::format("experts {} copies={} parts={} axis={} scale={} "
                       "noise={}",
                       rule.source, rule.copies, rule.parts, rule.axis,
                       rule.scale, rule.noiseStd);
  case UpcycleRule::Kind::Router:
    return fmt::format("router copies={} parts={}", rule.copies, rule.parts);
  case UpcycleRule::Kind::Zeros:
    return "zeros";
  }
  fail("unknown upcycle rule kind");
}

UpcycleRule moert::parseUpcycleRule(const std::string &text,
                                    const std::string &where) {
  auto bad = [&](const std::string &why) -> UpcycleRule {
    fail("{}: upcycle rule '{}': {}", where, text, why);
  };
  std::istringstream words(text);
  std::string kind;
  words >> kind;
  UpcycleRule rule;
  if (kind == "copy")
    rule.kind = UpcycleRule::Kind::Copy;
  else if (kind == "experts")
    rule.kind = UpcycleRule::Kind::Experts;
  else if (kind == "router")
    rule.kind = UpcycleRule::Kind::Router;
  else if (kind == "zeros")
    rule.kind = UpcycleRule::Kind::Zeros;
  else
    return bad("expected 'copy', 'experts', 'router' or 'zeros'");
  bool sourced = rule.kind == UpcycleRule::Kind::Copy ||
                 rule.kind == UpcycleRule::Kind::Experts;
  if (sourced && !(words >> rule.source))
    return bad("no source tensor");
  std::string word;
  while (words >> word) {
    size_t equals = word.find('=');
    std::string key = word.substr(0, equals);
    std::istringstream value(
        equals == std::string::npos ? std::string() : word.substr(equals + 1));
    bool read = key == "copies"  ? static_cast<bool>(value >> rule.copies)
                : key == "parts" ? static_cast<bool>(value >> rule.parts)
                : key == "axis"  ? static_cast<bool>(value >> rule.axis)
                : key == "scale" ? static_cast<bool>(value >> rule.scale)
                : key == "noise" ? static_cast<bool>(value >> rule.noiseStd)
                                 : false;
    if (!read || !value.eof())
      return bad("cannot read '" + word + "'");
  }
  if (rule.copies < 1 || rule.parts < 1 || rule.axis < 0 || rule.axis > 1 ||
      !(rule.noiseStd >= 0) || !(rule.scale > 0))
    return bad("copies and parts must be positive, axis 0 or 1, scale > 0 "
               "and noise >= 0");
  // Each kind takes only its own keys: a key another kind reads would be
  // silently ignored. A copy may be scaled.
  bool unread = rule.axis != 0 || rule.noiseStd != 0 ||
                (rule.scale != 1 && rule.kind != UpcycleRule::Kind::Copy);
  if (rule.kind == UpcycleRule::Kind::Copy ||
      rule.kind == UpcycleRule::Kind::Zeros)
    unread |= rule.copies != 1 || rule.parts != 1;
  if (rule.kind != UpcycleRule::Kind::Experts && unread)
    return bad("a key that this kind of rule does not take");
  return rule;
}

void moert::checkDenseTensorsUsed(const WeightSource &dense,
                                  const std::set<std::string> &sources) {
  auto isUsed = [&](const std::string &name) {
    return sources.count(name) > 0;
  };
  for (const std::string &name : dense.names())
    if (!isUsed(name) && !isIgnorableTensor(name, isUsed))
      fail("{}: tensor '{}' is not part of the dense model this model was "
           "upcycled from",
           dense.getPath(), name);
}

namespace {

template <typename T> T *values(OwnedTensor &tensor) {
  return reinterpret_cast<T *>(tensor.data.data());
}

int64_t elementsOf(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

} // namespace

OwnedTensor moert::upcycleTensor(const UpcycleRule &rule,
                                 const WeightSource &dense,
                                 const std::string &name,
                                 const std::vector<int64_t> &shape, DType dtype,
                                 uint64_t seed, double initStd) {
  // Computed in double, stored in the model's dtype.
  std::vector<double> out(elementsOf(shape));
  uint64_t key = streamKey(seed, name);
  auto shapeError = [&](const std::vector<int64_t> &denseShape) {
    fail("{}: dense tensor '{}' is {}, which rule '{}' cannot turn into "
         "'{}' {}",
         dense.getPath(), rule.source, formatShape(denseShape),
         formatUpcycleRule(rule), name, formatShape(shape));
  };
  switch (rule.kind) {
  case UpcycleRule::Kind::Copy: {
    OwnedTensor source =
        dense.get(rule.source, rule.scale == 1 ? dtype : DType::F64);
    if (source.shape != shape)
      shapeError(source.shape);
    if (rule.scale == 1)
      return source;
    const double *from = values<double>(source);
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = rule.scale * from[i];
    break;
  }
  case UpcycleRule::Kind::Experts: {
    OwnedTensor source = dense.get(rule.source, DType::F64);
    const std::vector<int64_t> &d = source.shape;
    int64_t experts = rule.copies * rule.parts;
    // The dense [F, H] (axis 0) or [H, F] (axis 1); each expert
    // [F / parts, H] or [H, F / parts].
    if (d.size() != 2 || d[rule.axis] % rule.parts != 0)
      shapeError(d);
    std::vector<int64_t> expert = d;
    expert[rule.axis] /= rule.parts;
    if (shape != std::vector<int64_t>{experts, expert[0], expert[1]})
      shapeError(d);
    const double *from = values<double>(source);
    int64_t perExpert = expert[0] * expert[1];
    for (int64_t e = 0; e < experts; ++e) {
      int64_t part = e % rule.parts;
      for (int64_t r = 0; r < expert[0]; ++r)
        for (int64_t c = 0; c < expert[1]; ++c) {
          int64_t row = rule.axis == 0 ? part * expert[0] + r : r;
          int64_t col = rule.axis == 1 ? part * expert[1] + c : c;
          int64_t index = e * perExpert + r * expert[1] + c;
          out[index] = rule.scale * from[row * d[1] + col];
          if (rule.noiseStd > 0)
            out[index] += rule.noiseStd * normalAt(key, index);
        }
    }
    break;
  }
  case UpcycleRule::Kind::Router: {
    if (shape.size() != 2 || shape[0] != rule.copies * rule.parts)
      fail("{}: rule '{}' cannot build '{}' {}", dense.getPath(),
           formatUpcycleRule(rule), name, formatShape(shape));
    int64_t hidden = shape[1];
    for (int64_t e = 0; e < shape[0]; ++e)
      for (int64_t h = 0; h < hidden; ++h)
        out[e * hidden + h] =
            initStd * normalAt(key, (e / rule.parts) * hidden + h);
    break;
  }
  case UpcycleRule::Kind::Zeros:
    break;
  }
  OwnedTensor result{DType::F64, shape, {}};
  result.data.resize(out.size() * sizeof(double));
  std::memcpy(result.data.data(), out.data(), result.data.size());
  return convertTensor(result.view(name), dtype, name);
}
