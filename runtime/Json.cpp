//===- Json.cpp - parsing JSON that the runtime reads ---------------------===//

#include "moert/Json.h"
#include "moert/Error.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace {
/// Why parsing stopped short of a syntax error, at `position` ("LINE:COLUMN"
/// or "" for the whole text).
struct Refused {
  std::string position, problem;

  std::string describe(std::string_view where) const {
    return position.empty()
               ? fmt::format("{}: {}", where, problem)
               : fmt::format("{}:{}: {}", where, position, problem);
  }
};

/// "LINE:COLUMN" of byte `offset` of `text`, both from 1.
std::string positionOf(std::string_view text, size_t offset) {
  std::string_view before = text.substr(0, std::min(offset, text.size()));
  size_t line = std::count(before.begin(), before.end(), '\n') + 1;
  size_t lineStart = before.rfind('\n');
  size_t column =
      before.size() - (lineStart == std::string_view::npos ? 0 : lineStart + 1);
  return fmt::format("{}:{}", line, column + 1);
}

/// nlohmann's parse of `text`, throwing Refused where it holds a NUL byte
/// (which nlohmann's lexer takes for the end of the text), a key twice in
/// one object (a parser would keep one of them silently) or nests past
/// kMaxJsonDepth, and nlohmann's exceptions at syntax errors.
nlohmann::json parseRefusing(std::string_view text) {
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    throw Refused{positionOf(text, nul), "invalid JSON: a NUL byte"};
  std::vector<std::set<std::string>> keys;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event,
                      nlohmann::json &parsed) {
    if (depth > moert::kMaxJsonDepth)
      throw Refused{"", fmt::format("JSON nests deeper than {} levels",
                                    moert::kMaxJsonDepth)};
    if (event == nlohmann::json::parse_event_t::object_start)
      keys.emplace_back();
    else if (event == nlohmann::json::parse_event_t::object_end)
      keys.pop_back();
    else if (event == nlohmann::json::parse_event_t::key &&
             !keys.back().insert(parsed.get<std::string>()).second) {
      // Escaped as JSON writes it (a NUL would end the message), unquoted.
      std::string key = parsed.dump();
      throw Refused{
          "", fmt::format("'{}' appears twice",
                          std::string_view(key).substr(1, key.size() - 2))};
    }
    return true;
  };
  return nlohmann::json::parse(text.begin(), text.end(), callback);
}
} // namespace

nlohmann::json moert::parseJsonWithin(std::string_view text,
                                      std::string_view where,
                                      std::string &problem) {
  problem.clear();
  try {
    return parseRefusing(text);
  } catch (const Refused &refused) {
    problem = refused.describe(where);
  } catch (const nlohmann::json::exception &error) {
    problem = describeJsonError(where, text, error);
  }
  return nlohmann::json(nlohmann::json::value_t::discarded);
}

nlohmann::json moert::parseJson(std::string_view text, std::string_view where) {
  try {
    return parseRefusing(text);
  } catch (const Refused &refused) {
    fail("{}", refused.describe(where));
  } catch (const nlohmann::json::exception &) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
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
  size_t offset = parseError->byte ? parseError->byte - 1 : 0;
  if (size_t at = cause.find(": "); at != std::string_view::npos)
    cause.remove_prefix(at + 2);
  return fmt::format("{}:{}: invalid JSON: {}", where, positionOf(text, offset),
                     cause);
}

nlohmann::json moert::parseJsonOrFail(std::string_view text,
                                      std::string_view where) {
  std::string problem;
  nlohmann::json value = parseJsonWithin(text, where, problem);
  if (!problem.empty())
    fail("{}", problem);
  return value;
}
