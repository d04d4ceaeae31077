// Glob-style matching with Redis's rules (KEYS, SCAN MATCH, CONFIG GET):
// '*' any run, '?' one byte, '[...]' a class with '^' negation and 'a-z' ranges,
// '\\' escapes. An unterminated class ends at the end of the pattern.
#pragma once

#include <string_view>

namespace larder {

bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase = false);

}  // namespace larder
