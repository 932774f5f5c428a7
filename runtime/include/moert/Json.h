//===- Json.h - parsing JSON that the runtime reads -------------*- C++ -*-===//
//
// JSON read strictly, so that a file never means something else than it
// says: nlohmann's parser keeps one of two equal keys and takes a NUL byte
// for the end of the text, so both are refused. Its parser is iterative,
// but printing, comparing and copying a value recurse: a file of a few
// hundred KB of brackets would overflow the stack in an error message.
// JSON is therefore refused past a depth that no config, header or
// metadata comes near.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_JSON_H
#define MOERT_JSON_H

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace moert {

/// How deep parsed JSON may nest (configs nest 3 levels or so).
constexpr int kMaxJsonDepth = 64;

/// `text` parsed, or a discarded value (is_discarded()) where it is not
/// JSON that the project reads: a syntax error, a NUL byte (which
/// nlohmann's parser takes for the end of the text), a key twice in one
/// object, or nesting deeper than kMaxJsonDepth; `problem` then says which,
/// as parseJsonOrFail would for a text named `where` ("" where it parsed).
nlohmann::json parseJsonWithin(std::string_view text, std::string_view where,
                               std::string &problem);

/// The same, throwing moert::Error, naming `where`, where it holds a NUL
/// byte or a key twice, or nests deeper than kMaxJsonDepth (a syntax error
/// gives a discarded value).
nlohmann::json parseJson(std::string_view text, std::string_view where);

/// What a parse exception of `text` says, for a file named `where`:
/// "WHERE:LINE:COLUMN: invalid JSON: CAUSE" at a syntax error, "WHERE:
/// invalid JSON: CAUSE" for a number beyond a double's range (no position).
std::string describeJsonError(std::string_view where, std::string_view text,
                              const nlohmann::json::exception &error);

/// `text` parsed, throwing moert::Error, naming `where`, where it is not
/// JSON (describeJsonError) or parseJsonWithin refuses it otherwise.
nlohmann::json parseJsonOrFail(std::string_view text, std::string_view where);

} // namespace moert

#endif // MOERT_JSON_H
