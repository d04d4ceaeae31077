// Geo commands over sorted sets: a member's score is its 52-bit geohash
// (26 bits of latitude interleaved with 26 of longitude), as in Redis, so
// GEOADD'ed keys are ordinary sorted sets and ZRANGE etc. see the same scores.
//
// Searches (GEOSEARCH, GEORADIUS...) walk the geohash cells around the
// centre as Redis does (the centre's cell at a precision fit for the shape,
// then its eight neighbours, each a score range of the set), so they find
// the same members in the same order: without ASC/DESC/COUNT the results
// come in that walk order, and ANY stops where Redis stops.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "commands/families.h"
#include "engine/command.h"
#include "engine/notify.h"
#include "commands/lookup.h"
#include "common/numbers.h"
#include "common/strings.h"
#include "keyspace/zset_value.h"
#include "engine/engine.h"

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

// A coordinate pair as Redis prints it (long double, trailing zeros cut).
void ReplyCoords(CommandContext& ctx, double lon, double lat) {
  ctx.rb->ArrayHeader(2);
  for (double v : {lon, lat}) {
    std::string s = FormatLongDoubleHuman(v);
    if (ctx.rb->protocol() >= 3) ctx.rb->Raw("," + s + "\r\n");
    else ctx.rb->Bulk(s);
  }
}

// A distance with four decimals, as Redis prints it.
void ReplyDistance(CommandContext& ctx, double d) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.4f", d);
  if (ctx.rb->protocol() >= 3) ctx.rb->Raw(std::string(",") + buf + "\r\n");
  else ctx.rb->Bulk(buf);
}

// Each member's position from the sorted set at args[1], for GEOPOS and
// GEOHASH: fn(lon, lat), or null(i) when the member is missing.
template <typename Fn, typename Null>
void ForEachMemberPosition(CommandContext& ctx, ZSetValue* z, Fn&& fn, Null&& null) {
  ctx.rb->ArrayHeader(ctx.argc() - 2);
  for (size_t i = 2; i < ctx.argc(); ++i) {
    auto score = z ? z->Score(ctx.arg(i)) : std::nullopt;
    if (!score) {
      null();
      continue;
    }
    double lon, lat;
    Decode(static_cast<uint64_t>(*score), &lon, &lat);
    fn(lon, lat);
  }
}

bool Lookup(CommandContext& ctx, std::string_view key, ZSetValue** out) {
  return LookupObject<ZSetValue, ObjType::kZSet>(ctx, key, out);
}

bool ParseLonLat(CommandContext& ctx, size_t at, double* lon, double* lat) {
  if (!ParseDouble(ctx.arg(at), lon) || !ParseDouble(ctx.arg(at + 1), lat)) {
    ctx.Error(OpStatus::kNotAFloat);
    return false;
  }
  if (*lon < kLonMin || *lon > kLonMax || *lat < kLatMin || *lat > kLatMax) {
    ctx.Error(std::string_view(FormatError(OpStatus::kInvalidLonLat, *lon, *lat)).substr(0, 127));  // cut to 127 bytes, as it always was
    return false;
  }
  return true;
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
    if (!ParseLonLat(ctx, i, &lon, &lat)) return;
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
  ForEachMemberPosition(
      ctx, z, [&](double lon, double lat) { ReplyCoords(ctx, lon, lat); }, [&] { ctx.rb->NullArray(); });
}

bool ParseUnit(CommandContext& ctx, std::string_view u, double* to_meters) {
  if (EqualsIgnoreCase(u, "m")) *to_meters = 1;
  else if (EqualsIgnoreCase(u, "km")) *to_meters = 1000;
  else if (EqualsIgnoreCase(u, "ft")) *to_meters = 0.3048;
  else if (EqualsIgnoreCase(u, "mi")) *to_meters = 1609.34;
  else {
    ctx.Error(OpStatus::kUnsupportedUnit);
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
  ReplyDistance(ctx, Distance(lon1, lat1, lon2, lat2) / to_meters);
}

void GeoHash(CommandContext& ctx) {
  static const char kAlphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(1), &z)) return;
  ForEachMemberPosition(
      ctx, z,
      [&](double lon, double lat) {
        // The standard geohash uses latitudes -90..90: encode the position again.
        uint64_t bits = Encode(lon, lat, -90, 90);
        char out[11];
        for (int c = 0; c < 11; ++c) {
          // 52 bits make 10.4 characters; the 11th is always '0', as in Redis.
          unsigned idx = c == 10 ? 0 : static_cast<unsigned>((bits >> (52 - (c + 1) * 5)) & 0x1f);
          out[c] = kAlphabet[idx];
        }
        ctx.rb->Bulk(std::string_view(out, 11));
      },
      [&] { ctx.rb->Null(); });
}

// ---- Searches ----

enum GeoFlags : unsigned {
  kByCoords = 1,     // GEORADIUS: lon lat radius unit
  kByMember = 2,     // GEORADIUSBYMEMBER: member radius unit
  kSearch = 4,       // GEOSEARCH: FROMMEMBER/FROMLONLAT, BYRADIUS/BYBOX
  kSearchStore = 8,  // GEOSEARCHSTORE
  kNoStore = 16,     // the _RO variants
};

struct Shape {
  bool box = false;
  double lon = 0, lat = 0;
  double radius = 0, width = 0, height = 0;  // in the unit given
  double to_meters = 1;
};

bool ParseRadius(CommandContext& ctx, size_t at, Shape* s) {
  if (!ParseDouble(ctx.arg(at), &s->radius)) {
    ctx.Error(OpStatus::kRadiusNotNumeric);
    return false;
  }
  if (s->radius < 0) {
    ctx.Error(OpStatus::kRadiusNegative);
    return false;
  }
  return ParseUnit(ctx, ctx.arg(at + 1), &s->to_meters);
}

bool ParseBox(CommandContext& ctx, size_t at, Shape* s) {
  if (!ParseDouble(ctx.arg(at), &s->width)) {
    ctx.Error(OpStatus::kWidthNotNumeric);
    return false;
  }
  if (!ParseDouble(ctx.arg(at + 1), &s->height)) {
    ctx.Error(OpStatus::kHeightNotNumeric);
    return false;
  }
  if (s->width < 0 || s->height < 0) {
    ctx.Error(OpStatus::kBoxNegative);
    return false;
  }
  s->box = true;
  return ParseUnit(ctx, ctx.arg(at + 2), &s->to_meters);
}

bool MemberPosition(CommandContext& ctx, ZSetValue* z, std::string_view m, Shape* s) {
  auto score = z ? z->Score(m) : std::nullopt;
  if (!score) {
    ctx.Error(OpStatus::kGeoMemberUndecodable);
    return false;
  }
  Decode(static_cast<uint64_t>(*score), &s->lon, &s->lat);
  return true;
}

// ---- The search area, as Redis computes it (geohash_helper.c) ----

// A geohash cell: `step` bits of latitude (even bits) and of longitude (odd).
struct Cell {
  uint64_t bits = 0;
  int step = 0;
  bool zero() const { return bits == 0 && step == 0; }
};

struct Area {
  double lat_min, lat_max, lon_min, lon_max;
};

constexpr double kMercatorMax = 20037726.37;
double DegToRad(double d) { return d * (M_PI / 180.0); }
double RadToDeg(double r) { return r / (M_PI / 180.0); }

Cell EncodeCell(double lon, double lat, int step) {
  double lat_off = (lat - kLatMin) / (kLatMax - kLatMin) * static_cast<double>(1ULL << step);
  double lon_off = (lon - kLonMin) / (kLonMax - kLonMin) * static_cast<double>(1ULL << step);
  return Cell{Spread(static_cast<uint32_t>(lat_off)) | (Spread(static_cast<uint32_t>(lon_off)) << 1), step};
}

Area CellArea(const Cell& c) {
  uint32_t ilat = Squash(c.bits), ilon = Squash(c.bits >> 1);
  double div = static_cast<double>(1ULL << c.step);
  return Area{kLatMin + (ilat * 1.0 / div) * (kLatMax - kLatMin), kLatMin + ((ilat + 1) * 1.0 / div) * (kLatMax - kLatMin),
              kLonMin + (ilon * 1.0 / div) * (kLonMax - kLonMin), kLonMin + ((ilon + 1) * 1.0 / div) * (kLonMax - kLonMin)};
}

// The neighbour `dx` cells east (longitude, odd bits) and `dy` north
// (latitude, even bits), wrapping around, as Redis moves a geohash.
Cell Move(Cell c, int dx, int dy) {
  const uint64_t kOdd = 0xaaaaaaaaaaaaaaaaULL, kEven = 0x5555555555555555ULL;
  int shift = 64 - c.step * 2;
  auto step_bits = [&](uint64_t v, uint64_t filler, uint64_t keep, int d) {
    if (d > 0) v += filler + 1;
    else if (d < 0) v = (v | filler) - (filler + 1);
    return v & keep;
  };
  uint64_t x = c.bits & kOdd, y = c.bits & kEven;
  if (dx) x = step_bits(x, kEven >> shift, kOdd >> shift, dx);
  if (dy) y = step_bits(y, kOdd >> shift, kEven >> shift, dy);
  c.bits = x | y;
  return c;
}

int EstimateSteps(double range_meters, double lat) {
  if (range_meters == 0) return 26;
  int step = 1;
  while (range_meters < kMercatorMax) {
    range_meters *= 2;
    ++step;
  }
  step -= 2;
  if (lat > 66 || lat < -66) {
    --step;
    if (lat > 80 || lat < -80) --step;
  }
  return std::clamp(step, 1, 26);
}

struct ScoreRange {
  double min, max;  // min <= score < max
};

// The score ranges to scan for a search: the cell of the centre at a
// precision fit for the shape, then its north, south, east, west,
// north-east, north-west, south-east and south-west neighbours, leaving out
// those the shape cannot reach (and a neighbour equal to the one before).
std::vector<ScoreRange> SearchBoxes(const Shape& shape) {
  double half_h = shape.to_meters * (shape.box ? shape.height / 2 : shape.radius);
  double half_w = shape.to_meters * (shape.box ? shape.width / 2 : shape.radius);
  double lat_delta = RadToDeg(half_h / kEarthRadiusMeters);
  double lon_delta_top = RadToDeg(half_w / kEarthRadiusMeters / std::cos(DegToRad(shape.lat + lat_delta)));
  double lon_delta_bottom = RadToDeg(half_w / kEarthRadiusMeters / std::cos(DegToRad(shape.lat - lat_delta)));
  bool south = shape.lat < 0;
  double min_lon = shape.lon - (south ? lon_delta_bottom : lon_delta_top);
  double max_lon = shape.lon + (south ? lon_delta_bottom : lon_delta_top);
  double min_lat = shape.lat - lat_delta, max_lat = shape.lat + lat_delta;

  double radius = shape.box ? std::sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2))
                            : shape.radius;
  int steps = EstimateSteps(radius * shape.to_meters, shape.lat);
  Cell centre = EncodeCell(shape.lon, shape.lat, steps);
  // A neighbour too close to the shape's edge: one step coarser.
  if (steps > 1 && (CellArea(Move(centre, 0, 1)).lat_max < max_lat || CellArea(Move(centre, 0, -1)).lat_min > min_lat ||
                    CellArea(Move(centre, 1, 0)).lon_max < max_lon || CellArea(Move(centre, -1, 0)).lon_min > min_lon)) {
    --steps;
    centre = EncodeCell(shape.lon, shape.lat, steps);
  }
  Area area = CellArea(centre);
  enum { kN = 1, kS, kE, kW, kNE, kNW, kSE, kSW };
  Cell cells[9] = {centre,
                   Move(centre, 0, 1),   Move(centre, 0, -1),  Move(centre, 1, 0),  Move(centre, -1, 0),
                   Move(centre, 1, 1),   Move(centre, -1, 1),  Move(centre, 1, -1), Move(centre, -1, -1)};
  if (steps >= 2) {
    if (area.lat_min < min_lat) cells[kS] = cells[kSW] = cells[kSE] = Cell{};
    if (area.lat_max > max_lat) cells[kN] = cells[kNE] = cells[kNW] = Cell{};
    if (area.lon_min < min_lon) cells[kW] = cells[kSW] = cells[kNW] = Cell{};
    if (area.lon_max > max_lon) cells[kE] = cells[kSE] = cells[kNE] = Cell{};
  }
  std::vector<ScoreRange> out;
  int last = 0;
  for (int i = 0; i < 9; ++i) {
    if (cells[i].zero()) continue;
    // As Redis: huge radiuses make neighbours repeat; skip one equal to the
    // last scanned (never compared with the centre).
    if (last && cells[i].bits == cells[last].bits && cells[i].step == cells[last].step) continue;
    int shift = 52 - cells[i].step * 2;
    out.push_back(ScoreRange{static_cast<double>(cells[i].bits << shift),
                             static_cast<double>((cells[i].bits + 1) << shift)});
    last = i;
  }
  return out;
}

struct Hit {
  std::string member;
  double dist;  // meters
  double score;
  double lon, lat;
};

void GeoSearchGeneric(CommandContext& ctx, unsigned flags) {
  size_t src = (flags & kSearchStore) ? 2 : 1;
  ZSetValue* z;
  if (!Lookup(ctx, ctx.arg(src), &z)) return;
  Shape shape;
  size_t base;
  if (flags & kByCoords) {
    base = 6;
    if (!ParseLonLat(ctx, 2, &shape.lon, &shape.lat) || !ParseRadius(ctx, 4, &shape)) return;
  } else if (flags & kByMember) {
    base = 5;
    if (z && (!MemberPosition(ctx, z, ctx.arg(2), &shape) || !ParseRadius(ctx, 3, &shape))) return;
  } else {
    base = (flags & kSearchStore) ? 3 : 2;
  }
  bool withdist = false, withhash = false, withcoord = false, any = false;
  int sort = 0;  // 1 asc, -1 desc
  int64_t count = 0;
  std::string_view store;
  bool has_store = (flags & kSearchStore) != 0, storedist = false;
  if (has_store) store = ctx.arg(1);
  bool frommember = false, fromloc = false, byradius = false, bybox = false;
  size_t remaining = ctx.argc() - base;
  for (size_t i = 0; i < remaining; ++i) {
    std::string_view a = ctx.arg(base + i);
    auto more = [&](size_t n) { return i + n < remaining; };
    if (EqualsIgnoreCase(a, "withdist")) withdist = true;
    else if (EqualsIgnoreCase(a, "withhash")) withhash = true;
    else if (EqualsIgnoreCase(a, "withcoord")) withcoord = true;
    else if (EqualsIgnoreCase(a, "any")) any = true;
    else if (EqualsIgnoreCase(a, "asc")) sort = 1;
    else if (EqualsIgnoreCase(a, "desc")) sort = -1;
    else if (EqualsIgnoreCase(a, "count") && more(1)) {
      if (!ParseInt64(ctx.arg(base + i + 1), &count)) return ctx.Error(OpStatus::kNotAnInteger);
      if (count <= 0) return ctx.Error(OpStatus::kGeoCountNotPositive);
      ++i;
    } else if ((EqualsIgnoreCase(a, "store") || EqualsIgnoreCase(a, "storedist")) && more(1) &&
               !(flags & kNoStore) && !(flags & kSearch)) {
      store = ctx.arg(base + i + 1);
      has_store = true;
      storedist = EqualsIgnoreCase(a, "storedist");
      ++i;
    } else if (EqualsIgnoreCase(a, "storedist") && (flags & kSearchStore)) {
      storedist = true;
    } else if (EqualsIgnoreCase(a, "frommember") && more(1) && (flags & kSearch) && !fromloc) {
      if (z && !MemberPosition(ctx, z, ctx.arg(base + i + 1), &shape)) return;
      frommember = true;
      ++i;
    } else if (EqualsIgnoreCase(a, "fromlonlat") && more(2) && (flags & kSearch) && !frommember) {
      if (!ParseLonLat(ctx, base + i + 1, &shape.lon, &shape.lat)) return;
      fromloc = true;
      i += 2;
    } else if (EqualsIgnoreCase(a, "byradius") && more(2) && (flags & kSearch) && !bybox) {
      if (!ParseRadius(ctx, base + i + 1, &shape)) return;
      byradius = true;
      i += 2;
    } else if (EqualsIgnoreCase(a, "bybox") && more(3) && (flags & kSearch) && !byradius) {
      if (!ParseBox(ctx, base + i + 1, &shape)) return;
      bybox = true;
      i += 3;
    } else {
      return ctx.SyntaxError();
    }
  }
  if (has_store && (withdist || withhash || withcoord))
    return ctx.Error((flags & kSearchStore) ? OpStatus::kGeoSearchStoreWith : OpStatus::kGeoRadiusStoreWith);
  std::string cmd(ctx.arg(0));
  if ((flags & kSearch) && !(frommember || fromloc))
    return ctx.Error(OpStatus::kGeoNeedsOneFrom, cmd);
  if ((flags & kSearch) && !(byradius || bybox))
    return ctx.Error(OpStatus::kGeoNeedsOneBy, cmd);
  if (any && !count) return ctx.Error(OpStatus::kGeoAnyNeedsCount);
  if (!z) {
    if (has_store) {
      if (ctx.DbFor(store).Delete(store)) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", store);
      return ctx.rb->Integer(0);
    }
    return ctx.rb->EmptyArray();
  }
  if (count && !sort && !any) sort = 1;

  std::vector<Hit> hits;
  // Redis's walk: the geohash cell around the centre and its neighbours, in
  // its order, each one's score range in ascending order.
  size_t limit = any ? static_cast<size_t>(count) : 0;
  for (const ScoreRange& box : SearchBoxes(shape)) {
    if (limit && hits.size() >= limit) break;
    size_t first = z->CountWhile([&](const ZSetValue::Ref& r) { return r.score < box.min; });
    z->Walk(first, false, [&](const ZSetValue::Ref& r) {
      if (r.score >= box.max) return false;
      double lon, lat;
      Decode(static_cast<uint64_t>(r.score), &lon, &lat);
      double dist;
      if (shape.box) {
        if (kEarthRadiusMeters * std::fabs(Radians(lat) - Radians(shape.lat)) > shape.height * shape.to_meters / 2)
          return true;
        if (Distance(lon, lat, shape.lon, lat) > shape.width * shape.to_meters / 2) return true;
        dist = Distance(shape.lon, shape.lat, lon, lat);
      } else {
        dist = Distance(shape.lon, shape.lat, lon, lat);
        if (dist > shape.radius * shape.to_meters) return true;
      }
      hits.push_back(Hit{std::string(r.member), dist, r.score, lon, lat});
      return !(limit && hits.size() >= limit);
    });
  }
  if (sort)
    std::stable_sort(hits.begin(), hits.end(),
                     [&](const Hit& a, const Hit& b) { return sort > 0 ? a.dist < b.dist : a.dist > b.dist; });
  size_t n = (count == 0 || static_cast<int64_t>(hits.size()) < count) ? hits.size() : static_cast<size_t>(count);
  if (has_store) {
    std::vector<std::string> words = {"zadd", std::string(store)};
    Db& db = ctx.DbFor(store);
    bool existed = db.Delete(store);
    if (n == 0 && existed) NotifyKeyspaceEvent(ctx, kNotifyGeneric, "del", store);
    if (n > 0) {
      std::vector<ZSetValue::Item> stored_items;
      stored_items.reserve(n);
      for (size_t i = 0; i < n; ++i)
        stored_items.push_back({storedist ? hits[i].dist / shape.to_meters : hits[i].score, hits[i].member});
      std::sort(stored_items.begin(), stored_items.end(), [](const auto& a, const auto& b) {
        return a.score < b.score || (a.score == b.score && a.member < b.member);
      });
      Config& c = ctx.engine->config();
      auto* out = ZSetValue::FromSorted(stored_items,
                                        ZSetLimits{static_cast<size_t>(c.zset_max_listpack_entries.load()),
                                                   static_cast<size_t>(c.zset_max_listpack_value.load())})
                      .release();
      Entry* stored = NewObjectEntry(store, ObjType::kZSet, out, -1);
      if (existed) db.AddQuiet(stored);  // an overwrite: not a new key
      else db.Add(stored);
      NotifyKeyspaceEvent(ctx, kNotifyZset, (flags & kSearchStore) ? "geosearchstore" : "georadiusstore", store);
    }
    return ctx.rb->Integer(static_cast<int64_t>(n));
  }
  size_t options = (withdist ? 1 : 0) + (withhash ? 1 : 0) + (withcoord ? 1 : 0);
  ctx.rb->ArrayHeader(n);
  for (size_t i = 0; i < n; ++i) {
    const Hit& h = hits[i];
    if (options) ctx.rb->ArrayHeader(options + 1);
    ctx.rb->Bulk(h.member);
    if (withdist) ReplyDistance(ctx, h.dist / shape.to_meters);
    if (withhash) ctx.rb->Integer(static_cast<int64_t>(h.score));
    if (withcoord) ReplyCoords(ctx, h.lon, h.lat);
  }
}

void GeoRadius(CommandContext& ctx) { GeoSearchGeneric(ctx, kByCoords); }
void GeoRadiusRo(CommandContext& ctx) { GeoSearchGeneric(ctx, kByCoords | kNoStore); }
void GeoRadiusByMember(CommandContext& ctx) { GeoSearchGeneric(ctx, kByMember); }
void GeoRadiusByMemberRo(CommandContext& ctx) { GeoSearchGeneric(ctx, kByMember | kNoStore); }
void GeoSearch(CommandContext& ctx) { GeoSearchGeneric(ctx, kSearch); }
void GeoSearchStore(CommandContext& ctx) { GeoSearchGeneric(ctx, kSearch | kSearchStore); }

// GEORADIUS ... STORE key names a second key.
std::vector<size_t> GeoRadiusKeys(std::span<const std::string_view> args) {
  std::vector<size_t> keys = {1};
  for (size_t i = 2; i + 1 < args.size(); ++i)
    if (EqualsIgnoreCase(args[i], "store") || EqualsIgnoreCase(args[i], "storedist")) keys.push_back(i + 1);
  return keys;
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
  add("geosearch", -7, R, GeoSearch, "@read @geo @slow", "Queries a geospatial index for members inside an area of a box or a circle.");
  add("georadius_ro", -6, R, GeoRadiusRo, "@read @geo @slow", "Returns members from a geospatial index that are within a distance from a coordinate.");
  add("georadiusbymember_ro", -5, R, GeoRadiusByMemberRo, "@read @geo @slow", "Returns members from a geospatial index that are within a distance from a member.");
  {
    CommandSpec s = MakeCommand("geosearchstore", -8, W | M, 1, 2, 1, GeoSearchStore, "@write @geo @slow",
                                "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.", "geo");
    s.since = "6.2.0";
    r->Add(std::move(s));
    s = MakeCommand("georadius", -6, W | M, 1, 1, 1, GeoRadius, "@write @geo @slow",
                    "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.", "geo");
    s.get_keys = GeoRadiusKeys;
    r->Add(s);
    s.name = "georadiusbymember";
    s.arity = -5;
    s.handler = GeoRadiusByMember;
    s.summary = "Queries a geospatial index for members within a distance from a member, optionally stores the result.";
    r->Add(std::move(s));
  }
}

}  // namespace larder
