#include "keyspace/zset_value.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/numbers.h"

namespace larder {

namespace {
// Shortest text that reads back as exactly `v` (integers print as integers).
std::string ScoreText(double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    int n = snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (strtod(buf, nullptr) == v || (v != v)) return std::string(buf, static_cast<size_t>(n));
  }
  int n = snprintf(buf, sizeof(buf), "%.17g", v);
  return std::string(buf, static_cast<size_t>(n));
}
}  // namespace

size_t ZSetValue::Position(const std::vector<Item>& items, double score, std::string_view member) {
  auto it = std::lower_bound(items.begin(), items.end(), 0, [&](const Item& a, int) {
    return a.score < score || (a.score == score && std::string_view(a.member) < member);
  });
  return static_cast<size_t>(it - items.begin());
}

std::vector<ZSetValue::Item> ZSetValue::Decode() const {
  std::vector<Item> out;
  out.reserve(packed_.size() / 2);
  size_t pos = packed_.First(), end = packed_.End(), next;
  while (pos < end) {
    std::string_view m = packed_.Get(pos, &next);
    std::string_view s = packed_.Get(next, &next);
    out.push_back(Item{strtod(std::string(s).c_str(), nullptr), std::string(m)});
    pos = next;
  }
  return out;
}

void ZSetValue::Encode(const std::vector<Item>& items) {
  packed_.Clear();
  for (const auto& i : items) {
    packed_.PushBack(i.member);
    packed_.PushBack(ScoreText(i.score));
  }
}

ZSetValue::View ZSetValue::Items() const {
  View v;
  if (big_) v.ref_ = &big_->items;
  else v.owned_ = Decode();
  return v;
}

std::optional<double> ZSetValue::Score(std::string_view member) const {
  if (big_) {
    auto it = big_->index.find(absl::string_view(member.data(), member.size()));
    if (it == big_->index.end()) return std::nullopt;
    return it->second;
  }
  size_t pos = packed_.Find(member, 2);
  if (pos == packed_.End()) return std::nullopt;
  size_t next;
  packed_.Get(pos, &next);
  return strtod(std::string(packed_.Get(next, &next)).c_str(), nullptr);
}

bool ZSetValue::Set(std::string_view member, double score, const ZSetLimits& limits) {
  auto cur = Score(member);
  if (cur && *cur == score) return false;
  std::vector<Item> local;
  std::vector<Item>& items = big_ ? big_->items : (local = Decode());
  if (cur) items.erase(items.begin() + static_cast<long>(Position(items, *cur, member)));
  size_t at = Position(items, score, member);
  items.insert(items.begin() + static_cast<long>(at), Item{score, std::string(member)});
  if (big_) {
    big_->index[std::string(member)] = score;
  } else {
    Encode(items);
    ConvertIfNeeded(limits);
  }
  return !cur;
}

void ZSetValue::ConvertIfNeeded(const ZSetLimits& limits) {
  if (big_) return;
  auto items = Decode();
  bool big = items.size() > limits.max_listpack_entries;
  for (const auto& i : items) big = big || i.member.size() > limits.max_listpack_value;
  if (!big) return;
  big_ = std::make_unique<Big>();
  big_->index.reserve(items.size());
  for (const auto& i : items) big_->index.emplace(i.member, i.score);
  big_->items = std::move(items);
  packed_.Clear();
}

bool ZSetValue::Remove(std::string_view member) {
  auto cur = Score(member);
  if (!cur) return false;
  if (big_) {
    big_->items.erase(big_->items.begin() + static_cast<long>(Position(big_->items, *cur, member)));
    big_->index.erase(absl::string_view(member.data(), member.size()));
    return true;
  }
  size_t pos = packed_.Find(member, 2);
  packed_.Erase(pos, 2);
  return true;
}

std::optional<size_t> ZSetValue::Rank(std::string_view member) const {
  auto cur = Score(member);
  if (!cur) return std::nullopt;
  if (big_) return Position(big_->items, *cur, member);
  return Position(Decode(), *cur, member);
}

void ZSetValue::EraseRanks(size_t first, size_t last) {
  if (big_) {
    for (size_t i = first; i < last; ++i) big_->index.erase(big_->items[i].member);
    big_->items.erase(big_->items.begin() + static_cast<long>(first), big_->items.begin() + static_cast<long>(last));
    return;
  }
  packed_.Erase(packed_.Seek(first * 2), (last - first) * 2);
}

size_t LowerBoundScore(const std::vector<ZSetValue::Item>& items, double s, bool exclusive) {
  auto it = std::lower_bound(items.begin(), items.end(), s, [&](const ZSetValue::Item& a, double v) {
    return exclusive ? a.score <= v : a.score < v;
  });
  return static_cast<size_t>(it - items.begin());
}

std::unique_ptr<ZSetValue> ZSetValue::Clone() const {
  auto c = std::make_unique<ZSetValue>();
  c->packed_ = PackedList(packed_);
  if (big_) c->big_ = std::make_unique<Big>(*big_);
  return c;
}

size_t ZSetValue::MemoryUsage() const {
  size_t n = sizeof(ZSetValue) + packed_.bytes();
  if (big_) {
    n += sizeof(Big) + big_->items.capacity() * sizeof(Item) +
         big_->index.capacity() * (sizeof(std::string) + sizeof(double) + 1);
    for (const auto& i : big_->items)
      if (i.member.capacity() > 15) n += 2 * (i.member.capacity() + 1);
  }
  return n;
}

}  // namespace larder
