//===- Json.cpp - parsing JSON that the runtime reads ---------------------===//

#include "moert/Json.h"
#include "moert/Error.h"

namespace {
struct TooDeep {};
} // namespace

nlohmann::json moert::parseJson(std::string_view text, std::string_view where) {
  auto limitDepth = [](int depth, nlohmann::json::parse_event_t,
                       nlohmann::json &) {
    if (depth > kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limitDepth,
                                 /*allow_exceptions=*/false);
  } catch (const TooDeep &) {
    fail("{}: JSON nests deeper than {} levels", where, kMaxJsonDepth);
  }
}
