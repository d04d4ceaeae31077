#include "keyspace/zset_value.h"

#include <algorithm>

namespace larder {

size_t ZSetValue::Position(double score, std::string_view member) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), 0, [&](const Item& a, int) {
    return a.score < score || (a.score == score && std::string_view(a.member) < member);
  });
  return static_cast<size_t>(it - items_.begin());
}

std::optional<double> ZSetValue::Score(std::string_view member) const {
  if (index_) {
    auto it = index_->find(absl::string_view(member.data(), member.size()));
    if (it == index_->end()) return std::nullopt;
    return it->second;
  }
  for (const auto& i : items_)
    if (i.member == member) return i.score;
  return std::nullopt;
}

bool ZSetValue::Set(std::string_view member, double score, const ZSetLimits& limits) {
  auto cur = Score(member);
  if (cur) {
    if (*cur == score) return false;
    size_t pos = Position(*cur, member);
    std::string m = std::move(items_[pos].member);
    items_.erase(items_.begin() + static_cast<long>(pos));
    size_t at = Position(score, m);  // before `m` is moved into the new item
    items_.insert(items_.begin() + static_cast<long>(at), Item{score, std::move(m)});
    if (index_) (*index_)[std::string(member)] = score;
    return false;
  }
  size_t at = Position(score, member);
  items_.insert(items_.begin() + static_cast<long>(at), Item{score, std::string(member)});
  if (index_) index_->emplace(std::string(member), score);
  else if (items_.size() > limits.max_listpack_entries || member.size() > limits.max_listpack_value)
    ConvertIfNeeded(ZSetLimits{0, 0});
  return true;
}

void ZSetValue::ConvertIfNeeded(const ZSetLimits& limits) {
  if (index_) return;
  bool big = items_.size() > limits.max_listpack_entries;
  for (const auto& i : items_) big = big || i.member.size() > limits.max_listpack_value;
  if (!big) return;
  index_ = std::make_unique<absl::flat_hash_map<std::string, double>>();
  index_->reserve(items_.size());
  for (const auto& i : items_) index_->emplace(i.member, i.score);
}

bool ZSetValue::Remove(std::string_view member) {
  auto cur = Score(member);
  if (!cur) return false;
  items_.erase(items_.begin() + static_cast<long>(Position(*cur, member)));
  if (index_) index_->erase(absl::string_view(member.data(), member.size()));
  return true;
}

std::optional<size_t> ZSetValue::Rank(std::string_view member) const {
  auto cur = Score(member);
  if (!cur) return std::nullopt;
  return Position(*cur, member);
}

void ZSetValue::EraseRanks(size_t first, size_t last) {
  if (index_)
    for (size_t i = first; i < last; ++i) index_->erase(items_[i].member);
  items_.erase(items_.begin() + static_cast<long>(first), items_.begin() + static_cast<long>(last));
}

size_t ZSetValue::LowerBoundScore(double s, bool exclusive) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), s, [&](const Item& a, double v) {
    return exclusive ? a.score <= v : a.score < v;
  });
  return static_cast<size_t>(it - items_.begin());
}

std::unique_ptr<ZSetValue> ZSetValue::Clone() const {
  auto c = std::make_unique<ZSetValue>();
  c->items_ = items_;
  if (index_) c->index_ = std::make_unique<absl::flat_hash_map<std::string, double>>(*index_);
  return c;
}

size_t ZSetValue::MemoryUsage() const {
  size_t n = sizeof(ZSetValue) + items_.capacity() * sizeof(Item);
  for (const auto& i : items_)
    if (i.member.capacity() > 15) n += i.member.capacity() + 1;
  if (index_) n += index_->capacity() * (sizeof(std::string) + sizeof(double) + 1);
  return n;
}

}  // namespace larder
