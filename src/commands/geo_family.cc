// Geo commands over sorted sets: a member's score is its 52-bit geohash
// (26 bits of latitude interleaved with 26 of longitude), as in Redis, so
// GEOADD'ed keys are ordinary sorted sets and ZRANGE etc. see the same scores.
//
// So far: GEOADD, GEOPOS, GEODIST, GEOHASH. GEOSEARCH and GEORADIUS* are the
// next step (their unsorted result order follows Redis's neighbour-area walk).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "commands/command.h"
#include "commands/lookup.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/zset_value.h"

namespace larder {

namespace {

constexpr double kLatMin = -85.05112878, kLatMax = 85.05112878;
constexpr double kLonMin = -180, kLonMax = 180;
constexpr int kStep = 26;  // bits per coordinate
constexpr double kEarthRadiusMeters = 6372797.560856;

// Spreads the 32 bits of x over the even bits of the result.
uint64_t Spread(uint32_t x) {
  uint64_t v = x;
  v = (v | (v << 16)) & 0x0000FFFF0000FFFFULL;
  v = (v | (v << 8)) & 0x00FF00FF00FF00FFULL;
  v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0FULL;
  v = (v | (v << 2)) & 0x3333333333333333ULL;
  v = (v | (v << 1)) & 0x5555555555555555ULL;
  return v;
}
uint32_t Squash(uint64_t v) {
  v &= 0x5555555555555555ULL;
  v = (v | (v >> 1)) & 0x3333333333333333ULL;
  v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
  v = (v | (v >> 4)) & 0x00FF00FF00FF00FFULL;
  v = (v | (v >> 8)) & 0x0000FFFF0000FFFFULL;
  v = (v | (v >> 16)) & 0x00000000FFFFFFFFULL;
  return static_cast<uint32_t>(v);
}

// Latitude in the even bits, longitude in the odd bits.
uint64_t Encode(double lon, double lat, double lat_min, double lat_max) {
  double lat_off = (lat - lat_min) / (lat_max - lat_min) * static_cast<double>(1ULL << kStep);
  double lon_off = (lon - kLonMin) / (kLonMax - kLonMin) * static_cast<double>(1ULL << kStep);
  return Spread(static_cast<uint32_t>(lat_off)) | (Spread(static_cast<uint32_t>(lon_off)) << 1);
}

// The centre of the cell a 52-bit hash names, clamped to the valid range.
void Decode(uint64_t bits, double* lon, double* lat) {
  uint32_t ilat = Squash(bits), ilon = Squash(bits >> 1);
  double scale = static_cast<double>(1ULL << kStep);
  double lat_lo = kLatMin + (ilat / scale) * (kLatMax - kLatMin);
  double lat_hi = kLatMin + ((ilat + 1) / scale) * (kLatMax - kLatMin);
  double lon_lo = kLonMin + (ilon / scale) * (kLonMax - kLonMin);
  double lon_hi = kLonMin + ((ilon + 1) / scale) * (kLonMax - kLonMin);
  *lon = std::clamp((lon_lo + lon_hi) / 2, kLonMin, kLonMax);
  *lat = std::clamp((lat_lo + lat_hi) / 2, kLatMin, kLatMax);
}

double Radians(double deg) { return deg * (M_PI / 180.0); }

// Haversine distance in meters, with Redis's shortcut for equal longitudes.
double Distance(double lon1, double lat1, double lon2, double lat2) {
  double v = std::sin((Radians(lon2) - Radians(lon1)) / 2);
  if (v == 0.0) return kEarthRadiusMeters * std::fabs(Radians(lat2) - Radians(lat1));
  double u = std::sin((Radians(lat2) - Radians(lat1)) / 2);
  double a = u * u + std::cos(Radians(lat1)) * std::cos(Radians(lat2)) * v * v;
  return 2.0 * kEarthRadiusMeters * std::asin(std::sqrt(a));
}

bool Lookup(CommandContext& ctx, std::string_view key, ZSetValue** out) {
  return LookupObject<ZSetValue, ObjType::kZSet>(ctx, key, out);
}

void GeoAdd(CommandContext& ctx) {
  size_t at = 2;
  bool nx = false, xx = false;
  for (; at < ctx.argc(); ++at) {
    std::string_view o = ctx.arg(at);
    if (EqualsIgnoreCase(o, "nx")) nx = true;
    else if (EqualsIgnoreCase(o, "xx")) xx = true;
    else if (!EqualsIgnoreCase(o, "ch")) break;
  }
  if ((ctx.argc() - at) % 3 || (nx && xx)) return ctx.SyntaxError();
  // Rewrite as ZADD key [options] score member ... and run ZADD, as Redis does.
  std::vector<std::string> words;
  words.emplace_back("zadd");
  for (size_t i = 1; i < at; ++i) words.emplace_back(ctx.arg(i));
  for (size_t i = at; i < ctx.argc(); i += 3) {
    double lon, lat;
    if (!ParseDouble(ctx.arg(i), &lon) || !ParseDouble(ctx.arg(i + 1), &lat)) return ctx.Error(OpStatus::kNotAFloat);
    if (lon < kLonMin || lon > kLonMax || lat < kLatMin || lat > kLatMax) {
      char buf[128];
      snprintf(buf, sizeof(buf), "ERR invalid longitude,latitude pair %f,%f", lon, lat);
      return ctx.Error(buf);
    }
    words.push_back(std::to_string(Encode(lon, lat, kLatMin, kLatMax)));
    words.emplace_back(ctx.arg(i + 2));
  }
  std::vector<std::string_view> argv(words.begin(), words.end());
  CommandContext zctx = ctx;
  zctx.args = argv;
  zctx.spec = Commands().Find("zadd");
  zctx.spec->handler(zctx);
}

void GeoPos(CommandContext& ctx) {
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    auto score = z ? z->Score(ctx.arg(i)) : std::nullopt;
    if (!score) {
      ctx.rb->NullArray();
      continue;
    }
    double lon, lat;
    Decode(static_cast<uint64_t>(*score), &lon, &lat);
    ctx.rb->ArrayHeader(2);
    for (double v : {lon, lat}) {
      std::string s = FormatLongDoubleHuman(v);
      if (ctx.rb->protocol() >= 3) ctx.rb->Raw("," + s + "\r\n");
      else ctx.rb->Bulk(s);
    }
  }
}

bool ParseUnit(CommandContext& ctx, std::string_view u, double* to_meters) {
  if (EqualsIgnoreCase(u, "m")) *to_meters = 1;
  else if (EqualsIgnoreCase(u, "km")) *to_meters = 1000;
  else if (EqualsIgnoreCase(u, "ft")) *to_meters = 0.3048;
  else if (EqualsIgnoreCase(u, "mi")) *to_meters = 1609.34;
  else {
    ctx.Error("ERR unsupported unit provided. please use M, KM, FT, MI");
    return false;
  }
  return true;
}

void GeoDist(CommandContext& ctx) {
  double to_meters = 1;
  if (ctx.argc() == 5) {
    if (!ParseUnit(ctx, ctx.arg(4), &to_meters)) return;
  } else if (ctx.argc() > 5) {
    return ctx.SyntaxError();
  }
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  auto a = z ? z->Score(ctx.arg(2)) : std::nullopt;
  auto b = z ? z->Score(ctx.arg(3)) : std::nullopt;
  if (!a || !b) return ctx.rb->Null();
  double lon1, lat1, lon2, lat2;
  Decode(static_cast<uint64_t>(*a), &lon1, &lat1);
  Decode(static_cast<uint64_t>(*b), &lon2, &lat2);
  char buf[64];
  snprintf(buf, sizeof(buf), "%.4f", Distance(lon1, lat1, lon2, lat2) / to_meters);
  if (ctx.rb->protocol() >= 3) ctx.rb->Raw(std::string(",") + buf + "\r\n");
  else ctx.rb->Bulk(buf);
}

void GeoHash(CommandContext& ctx) {
  static const char kAlphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    auto score = z ? z->Score(ctx.arg(i)) : std::nullopt;
    if (!score) {
      ctx.rb->Null();
      continue;
    }
    // The standard geohash uses latitudes -90..90: decode, then encode again.
    double lon, lat;
    Decode(static_cast<uint64_t>(*score), &lon, &lat);
    uint64_t bits = Encode(lon, lat, -90, 90);
    char out[11];
    for (int c = 0; c < 11; ++c) {
      // 52 bits make 10.4 characters; the 11th is always '0', as in Redis.
      unsigned idx = c == 10 ? 0 : static_cast<unsigned>((bits >> (52 - (c + 1) * 5)) & 0x1f);
      out[c] = kAlphabet[idx];
    }
    ctx.rb->Bulk(std::string_view(out, 11));
  }
}

}  // namespace

void RegisterGeoFamily(CommandRegistry* r) {
  constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, M = kCmdDenyOom;
  auto add = [r](const char* name, int arity, uint32_t flags, Handler h, const char* acl, const char* summary) {
    CommandSpec s = MakeCommand(name, arity, flags, 1, 1, 1, h, acl, summary, "geo");
    s.since = "3.2.0";
    r->Add(std::move(s));
  };
  add("geoadd", -5, W | M, GeoAdd, "@write @geo @slow", "Adds one or more members to a geospatial index. The key is created if it doesn't exist.");
  add("geopos", -2, R, GeoPos, "@read @geo @slow", "Returns the longitude and latitude of members from a geospatial index.");
  add("geodist", -4, R, GeoDist, "@read @geo @slow", "Returns the distance between two members of a geospatial index.");
  add("geohash", -2, R, GeoHash, "@read @geo @slow", "Returns members from a geospatial index as geohash strings.");
}

}  // namespace larder
