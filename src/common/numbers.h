// Number parsing and formatting with Redis's exact rules: what it accepts as an
// integer or a float, and how it prints them back, are visible to clients.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace larder {

// Strict integer parse (Redis string2ll): optional '-', no '+', no spaces, no
// leading zeros, must fit in int64.
bool ParseInt64(std::string_view s, int64_t* out);
// Like ParseInt64 for unsigned values (cursors).
bool ParseUint64(std::string_view s, uint64_t* out);

// Float parse as Redis's string2ld / string2d: strtold over the whole string,
// no leading space, "inf" accepted, NaN rejected.
bool ParseLongDouble(std::string_view s, long double* out);
bool ParseDouble(std::string_view s, double* out);

// INCRBYFLOAT's output: "%.17Lf" with trailing zeros (and a trailing '.') cut.
std::string FormatLongDoubleHuman(long double v);
// Redis's reply format for doubles in RESP2 (%.17g; "inf", "-inf").
std::string FormatDouble(double v);

// Number of decimal digits of v (with the sign).
int DecimalLength(int64_t v);

}  // namespace larder
