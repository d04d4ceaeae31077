#include "keyspace/zset_value.h"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/numbers.h"
#include "keyspace/table.h"

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

double ParseScoreText(std::string_view s) {
  char buf[64];
  size_t n = std::min(s.size(), sizeof(buf) - 1);
  memcpy(buf, s.data(), n);
  buf[n] = '\0';
  return strtod(buf, nullptr);
}

bool Less(const ZSetValue::Ref& a, double score, std::string_view member) {
  return a.score < score || (a.score == score && a.member < member);
}
}  // namespace

uint64_t ZNodeTraits::Hash(std::string_view m) { return HashKey(m); }

ZSetValue::~ZSetValue() {
  if (big_) big_->index.Forget();  // the list frees the nodes
}

std::vector<ZSetValue::Ref> ZSetValue::Decode() const {
  std::vector<Ref> out;
  out.reserve(packed_.size() / 2);
  size_t pos = packed_.First(), end = packed_.End(), next;
  while (pos < end) {
    std::string_view m = packed_.Get(pos, &next);
    std::string_view s = packed_.Get(next, &next);
    out.push_back(Ref{ParseScoreText(s), m});
    pos = next;
  }
  return out;
}

void ZSetValue::Encode(const std::vector<Ref>& items) {
  PackedList fresh;  // `items` may view the old block
  for (const auto& i : items) {
    fresh.PushBack(i.member);
    fresh.PushBack(ScoreText(i.score));
  }
  packed_ = std::move(fresh);
}

std::optional<double> ZSetValue::Score(std::string_view member) const {
  if (big_) {
    const ZNode* n = big_->index.Lookup(member);
    if (!n) return std::nullopt;
    return n->score;
  }
  size_t pos = packed_.Find(member, 2);
  if (pos == packed_.End()) return std::nullopt;
  size_t next;
  packed_.Get(pos, &next);
  return ParseScoreText(packed_.Get(next, &next));
}

bool ZSetValue::Set(std::string_view member, double score, const ZSetLimits& limits) {
  if (big_) {
    if (ZNode* n = big_->index.Find(member)) {
      if (n->score != score) big_->list.UpdateScore(n, score);
      return false;
    }
    big_->index.Insert(big_->list.Insert(score, member));
    return true;
  }
  auto cur = Score(member);
  if (cur && *cur == score) return false;
  std::string owned(member);  // `member` may view the block Encode replaces
  std::vector<Ref> items = Decode();
  if (cur) {
    items.erase(std::find_if(items.begin(), items.end(), [&](const Ref& r) { return r.member == owned; }));
  }
  auto at = std::lower_bound(items.begin(), items.end(), 0,
                             [&](const Ref& a, int) { return Less(a, score, owned); });
  items.insert(at, Ref{score, owned});
  Encode(items);
  ConvertIfNeeded(limits);
  return !cur;
}

void ZSetValue::ConvertIfNeeded(const ZSetLimits& limits) {
  if (big_) return;
  auto items = Decode();
  bool big = items.size() > limits.max_listpack_entries;
  for (const auto& i : items) big = big || i.member.size() > limits.max_listpack_value;
  if (!big) return;
  auto b = std::make_unique<Big>();
  b->index.Reserve(items.size());
  for (const auto& i : items) b->index.Insert(b->list.Insert(i.score, i.member));
  big_ = std::move(b);
  packed_.Clear();
}

bool ZSetValue::Remove(std::string_view member) {
  if (big_) {
    ZNode* n = big_->index.Unlink(member);
    if (!n) return false;
    big_->list.Erase(n);
    big_->index.MaybeShrink();
    return true;
  }
  size_t pos = packed_.Find(member, 2);
  if (pos == packed_.End()) return false;
  packed_.Erase(pos, 2);
  return true;
}

std::optional<size_t> ZSetValue::Rank(std::string_view member) const {
  if (big_) {
    const ZNode* n = big_->index.Lookup(member);
    if (!n) return std::nullopt;
    return big_->list.RankOf(n);
  }
  auto items = Decode();
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].member == member) return i;
  return std::nullopt;
}

void ZSetValue::EraseRanks(size_t first, size_t last) {
  if (first >= last) return;
  if (big_) {
    ZNode* n = big_->list.AtRank(first);
    for (size_t i = first; i < last && n; ++i) {
      ZNode* next = n->next();
      big_->index.Unlink(n->member());
      big_->list.Erase(n);
      n = next;
    }
    big_->index.MaybeShrink();
    return;
  }
  packed_.Erase(packed_.Seek(first * 2), (last - first) * 2);
}

ZSetValue::Ref ZSetValue::RandomItem(std::mt19937_64& rng) const {
  if (big_) {
    const ZNode* n = big_->index.Random(rng);
    return Ref{n->score, n->member()};
  }
  auto items = Decode();
  return items[rng() % items.size()];
}

std::vector<ZSetValue::Item> ZSetValue::ToVector() const {
  std::vector<Item> out;
  out.reserve(size());
  ForEach([&](const Ref& r) { out.push_back(Item{r.score, std::string(r.member)}); });
  return out;
}

std::unique_ptr<ZSetValue> ZSetValue::FromSorted(const std::vector<Item>& items, const ZSetLimits& limits) {
  auto z = std::make_unique<ZSetValue>();
  bool big = items.size() > limits.max_listpack_entries;
  for (size_t i = 0; i < items.size() && !big; ++i) big = items[i].member.size() > limits.max_listpack_value;
  if (!big) {
    for (const auto& i : items) {
      z->packed_.PushBack(i.member);
      z->packed_.PushBack(ScoreText(i.score));
    }
    return z;
  }
  z->big_ = std::make_unique<Big>();
  z->big_->index.Reserve(items.size());
  for (auto it = items.rbegin(); it != items.rend(); ++it)  // descending: each lands at the head
    z->big_->index.Insert(z->big_->list.Insert(it->score, it->member));
  return z;
}

std::unique_ptr<ZSetValue> ZSetValue::Clone() const {
  auto c = std::make_unique<ZSetValue>();
  c->packed_ = PackedList(packed_);
  if (big_) {
    c->big_ = std::make_unique<Big>();
    c->big_->index.Reserve(size());
    // Descending, so each insert lands at the head.
    Walk(0, true, [&](const Ref& r) {
      c->big_->index.Insert(c->big_->list.Insert(r.score, r.member));
      return true;
    });
  }
  return c;
}

size_t ZSetValue::MemoryUsage(size_t samples) const {
  size_t n = sizeof(ZSetValue) + packed_.bytes();
  if (big_) {
    n += sizeof(Big) + big_->index.BucketBytes() + big_->list.HeadBytes() +
         big_->index.NodeBytes(samples, [](ZNode* node) { return malloc_usable_size(node); });
  }
  return n;
}

}  // namespace larder
