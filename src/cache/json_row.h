// `as json` values: a loaded row written as a JSON object whose members
// take the columns' types, and the way back, a JSON object's top-level
// members as the values a store statement binds (write-through,
// write-behind). Only what the cache needs: no general JSON document model.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/source.h"

namespace larder::cache {

// Appends `s` as a JSON string (quotes, escapes).
void AppendJsonString(std::string* out, std::string_view s);
// Whether `s` is a number as JSON spells it.
bool IsJsonNumber(std::string_view s);

// The row as a JSON object: integers and floats as numbers (NaN and the
// infinities, which JSON has no number for, as strings), booleans as
// booleans, json/jsonb embedded, NULL as null, anything else (numeric
// included: no digit lost) a string.
std::string RowAsJson(const QueryResult& r);

// The top-level members of a JSON object, each as a store statement binds
// it: a string unescaped, a number or true/false as written, null as SQL
// NULL (nullopt), an object or array as its JSON text. False (and `out`
// left empty) when `json` is not one JSON object.
bool JsonObjectMembers(std::string_view json, std::vector<std::pair<std::string, std::optional<std::string>>>* out);

}  // namespace larder::cache
