//===- Json.cpp - parsing JSON that the runtime reads ---------------------===//

#include "moert/Json.h"
#include "moert/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace {
struct TooDeep {};

/// nlohmann's parser callback that refuses JSON past kMaxJsonDepth.
bool limitDepth(int depth, nlohmann::json::parse_event_t, nlohmann::json &) {
  if (depth > moert::kMaxJsonDepth)
    throw TooDeep{};
  return true;
}
} // namespace

nlohmann::json moert::parseJsonWithin(std::string_view text, bool &tooDeep) {
  tooDeep = false;
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limitDepth,
                                 /*allow_exceptions=*/false);
  } catch (const TooDeep &) {
    tooDeep = true;
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}

nlohmann::json moert::parseJson(std::string_view text, std::string_view where) {
  bool tooDeep;
  nlohmann::json value = parseJsonWithin(text, tooDeep);
  if (tooDeep)
    fail("{}: JSON nests deeper than {} levels", where, kMaxJsonDepth);
  return value;
}

std::string moert::describeJsonError(std::string_view where,
                                     std::string_view text,
                                     const nlohmann::json::exception &error) {
  std::string_view cause = error.what();
  auto *parseError = dynamic_cast<const nlohmann::json::parse_error *>(&error);
  if (!parseError) {
    // "[json.exception.out_of_range.406] number overflow ..."
    if (size_t at = cause.find("] "); at != std::string_view::npos)
      cause.remove_prefix(at + 2);
    return fmt::format("{}: invalid JSON: {}", where, cause);
  }
  // byte counts from 1; the message starts "[json.exception...] parse
  // error at ...: " before the cause.
  size_t offset = std::min<size_t>(parseError->byte ? parseError->byte - 1 : 0,
                                   text.size());
  std::string_view before = text.substr(0, offset);
  size_t line = std::count(before.begin(), before.end(), '\n') + 1;
  size_t lineStart = before.rfind('\n');
  size_t column =
      offset - (lineStart == std::string_view::npos ? 0 : lineStart + 1) + 1;
  if (size_t at = cause.find(": "); at != std::string_view::npos)
    cause.remove_prefix(at + 2);
  return fmt::format("{}:{}:{}: invalid JSON: {}", where, line, column, cause);
}

nlohmann::json moert::parseJsonOrFail(std::string_view text,
                                      std::string_view where) {
  // The keys of each object being parsed: a parser would keep one of two
  // equal keys silently.
  std::vector<std::set<std::string>> keys;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event,
                      nlohmann::json &parsed) {
    limitDepth(depth, event, parsed);
    if (event == nlohmann::json::parse_event_t::object_start)
      keys.emplace_back();
    else if (event == nlohmann::json::parse_event_t::object_end)
      keys.pop_back();
    else if (event == nlohmann::json::parse_event_t::key &&
             !keys.back().insert(parsed.get<std::string>()).second)
      fail("{}: '{}' appears twice", where, parsed.get<std::string>());
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const TooDeep &) {
    fail("{}: JSON nests deeper than {} levels", where, kMaxJsonDepth);
  } catch (const nlohmann::json::exception &error) {
    fail("{}", describeJsonError(where, text, error));
  }
}
