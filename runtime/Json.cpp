//===- Json.cpp - parsing JSON that the runtime reads ---------------------===//

#include "moert/Json.h"
#include "moert/Error.h"

namespace {
struct TooDeep {};
} // namespace

nlohmann::json moert::parseJsonWithin(std::string_view text, bool &tooDeep) {
  auto limitDepth = [](int depth, nlohmann::json::parse_event_t,
                       nlohmann::json &) {
    if (depth > kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
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
