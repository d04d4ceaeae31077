#include "ds/quick_list.h"

#include <algorithm>

namespace larder {

namespace {
constexpr size_t kSafetyBytes = 8192;  // a node's limit under a positive fill
// A varint length prefix plus the bytes.
size_t ElementBytes(std::string_view s) {
  size_t n = 1;
  for (size_t v = s.size(); v >= 0x80; v >>= 7) ++n;
  return n + s.size();
}
size_t NodeBytesFor(int fill) {
  if (fill >= 0) return kSafetyBytes;
  int level = std::min(-fill, 5);
  return size_t{4096} << (level - 1);
}
}  // namespace

std::atomic<size_t> QuickList::packed_threshold{QuickList::kDefaultPackedThreshold};

bool QuickList::Fits(const PackedList& node, std::string_view s) const {
  int fill = fill_;
  if (node.empty()) return true;
  size_t plain = packed_threshold.load(std::memory_order_relaxed);
  if (s.size() >= plain || (node.size() == 1 && node.bytes() >= plain)) return false;  // a plain node
  size_t add_bytes = ElementBytes(s);
  if (fill > 0 && node.size() >= static_cast<size_t>(fill)) return false;
  if (fill == 0 && node.size() >= 1) return false;
  return node.bytes() + add_bytes <= NodeBytesFor(fill);
}

void QuickList::PushFront(std::string_view s) {
  if (nodes_.empty() || !Fits(nodes_.front(), s)) nodes_.emplace_front();
  nodes_.front().PushFront(s);
  ++size_;
}

void QuickList::PushBack(std::string_view s) {
  if (nodes_.empty() || !Fits(nodes_.back(), s)) nodes_.emplace_back();
  nodes_.back().PushBack(s);
  ++size_;
}

std::string QuickList::PopFront() {
  PackedList& node = nodes_.front();
  size_t next;
  std::string out(node.Get(node.First(), &next));
  node.Erase(node.First());
  if (node.empty()) nodes_.pop_front();
  --size_;
  return out;
}

std::string QuickList::PopBack() {
  PackedList& node = nodes_.back();
  size_t pos = node.Seek(node.size() - 1), next;
  std::string out(node.Get(pos, &next));
  node.Erase(pos);
  if (node.empty()) nodes_.pop_back();
  --size_;
  return out;
}

std::pair<size_t, size_t> QuickList::Locate(size_t i) const {
  if (i < size_ / 2) {
    size_t n = 0;
    while (i >= nodes_[n].size()) i -= nodes_[n++].size();
    return {n, i};
  }
  size_t from_end = size_ - 1 - i;  // 0 is the last element
  size_t n = nodes_.size() - 1;
  while (from_end >= nodes_[n].size()) from_end -= nodes_[n--].size();
  return {n, nodes_[n].size() - 1 - from_end};
}

std::string_view QuickList::At(size_t i) const {
  auto [n, k] = Locate(i);
  size_t next;
  return nodes_[n].Get(nodes_[n].Seek(k), &next);
}

void QuickList::Set(size_t i, std::string_view s) {
  auto [n, k] = Locate(i);
  if (nodes_[n].size() > 1 && s.size() >= packed_threshold.load(std::memory_order_relaxed)) {
    std::string owned(s);  // (may view the node)
    Erase(i, 1);
    Insert(i, owned);  // a plain element: a node of its own
    return;
  }
  nodes_[n].Replace(nodes_[n].Seek(k), s);
  MaybeSplit(n);
}

void QuickList::Insert(size_t i, std::string_view s) {
  if (i >= size_) return PushBack(s);
  if (i == 0) return PushFront(s);
  auto [n, k] = Locate(i);
  if (s.size() >= packed_threshold.load(std::memory_order_relaxed)) {  // a plain element: a node of its own
    if (k > 0) {
      SplitAt(n, k);
      ++n;
    }
    PackedList node;
    node.PushBack(s);
    nodes_.insert(nodes_.begin() + static_cast<ptrdiff_t>(n), std::move(node));
    ++size_;
    return;
  }
  // Between two nodes, the end of the previous one may have the room.
  if (k == 0 && Fits(nodes_[n - 1], s)) {
    nodes_[n - 1].PushBack(s);
  } else {
    nodes_[n].Insert(nodes_[n].Seek(k), s);
    MaybeSplit(n);
  }
  ++size_;
}

void QuickList::Erase(size_t i, size_t count) {
  count = std::min(count, size_ - std::min(i, size_));
  if (count == 0) return;
  auto [n, k] = Locate(i);
  size_ -= count;
  while (count > 0) {
    PackedList& node = nodes_[n];
    size_t here = std::min(count, node.size() - k);
    if (here == node.size()) {
      nodes_.erase(nodes_.begin() + static_cast<ptrdiff_t>(n));
    } else {
      node.Erase(node.Seek(k), here);
      ++n;
    }
    count -= here;
    k = 0;
  }
}

void QuickList::MaybeSplit(size_t n) {
  int fill = fill_;
  PackedList& node = nodes_[n];
  size_t limit = NodeBytesFor(fill);
  bool over = node.bytes() > limit || (fill > 0 && node.size() > static_cast<size_t>(fill));
  if (!over || node.size() < 2) return;
  SplitAt(n, node.size() / 2);
}

void QuickList::SplitAt(size_t n, size_t k) {
  PackedList& node = nodes_[n];
  PackedList tail;
  size_t pos = node.Seek(k), end = node.End(), next;
  for (; pos < end; pos = next) tail.PushBack(node.Get(pos, &next));
  node.Erase(node.Seek(k), node.size() - k);
  nodes_.insert(nodes_.begin() + static_cast<ptrdiff_t>(n) + 1, std::move(tail));
}

size_t QuickList::MemoryUsage() const {
  size_t n = sizeof(QuickList) + nodes_.size() * sizeof(PackedList);
  for (const PackedList& node : nodes_) n += node.bytes();
  return n;
}

}  // namespace larder
