#include "ds/quick_list.h"

#include <lzf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace larder {

namespace {
constexpr size_t kSafetyBytes = 8192;  // a node's limit under a positive fill
// Compression as Redis tries it: nodes under 48 bytes stay as they are, and
// so do those that would not shrink by at least 8 bytes.
constexpr size_t kMinCompressBytes = 48;
constexpr size_t kMinCompressGain = 8;
constexpr size_t kLzfHeader = 12;

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
uint32_t Field(const char* lzf, int i) {
  uint32_t v;
  memcpy(&v, lzf + 4 * i, 4);
  return v;
}
void SetField(char* lzf, int i, uint32_t v) { memcpy(lzf + 4 * i, &v, 4); }
}  // namespace

std::atomic<size_t> QuickList::packed_threshold{QuickList::kDefaultPackedThreshold};

// --- Node ---------------------------------------------------------------

QuickList::Node::Node(const Node& o) : packed(o.packed), incompressible(o.incompressible) {
  if (o.lzf) {
    size_t n = kLzfHeader + Field(o.lzf, 2);
    lzf = static_cast<char*>(malloc(n));
    if (!lzf) throw std::bad_alloc();
    memcpy(lzf, o.lzf, n);
  }
}

QuickList::Node& QuickList::Node::operator=(Node&& o) noexcept {
  if (this != &o) {
    free(lzf);
    packed = std::move(o.packed);
    lzf = o.lzf;
    o.lzf = nullptr;
    incompressible = o.incompressible;
  }
  return *this;
}

QuickList::Node::~Node() { free(lzf); }

size_t QuickList::Node::size() const { return lzf ? Field(lzf, 0) : packed.size(); }
size_t QuickList::Node::bytes() const { return lzf ? Field(lzf, 1) : packed.bytes(); }
size_t QuickList::Node::held_bytes() const { return lzf ? kLzfHeader + Field(lzf, 2) : packed.bytes(); }

void QuickList::Node::Compress() {
  if (lzf || incompressible) return;
  std::string_view raw = packed.Block();
  if (raw.size() < kMinCompressBytes) {
    incompressible = true;
    return;
  }
  size_t room = raw.size() - kMinCompressGain;
  char* out = static_cast<char*>(malloc(kLzfHeader + room));
  if (!out) throw std::bad_alloc();
  unsigned int n = lzf_compress(raw.data(), static_cast<unsigned int>(raw.size()), out + kLzfHeader,
                                static_cast<unsigned int>(room));
  if (n == 0) {  // would not shrink enough
    free(out);
    incompressible = true;
    return;
  }
  char* fitted = static_cast<char*>(realloc(out, kLzfHeader + n));
  if (fitted) out = fitted;
  SetField(out, 0, static_cast<uint32_t>(packed.size()));
  SetField(out, 1, static_cast<uint32_t>(raw.size()));
  SetField(out, 2, n);
  lzf = out;
  packed = PackedList();
}

PackedList QuickList::Node::Decompressed() const {
  size_t raw = Field(lzf, 1);
  char* block = static_cast<char*>(malloc(raw));
  if (!block) throw std::bad_alloc();
  unsigned int n = lzf_decompress(lzf + kLzfHeader, Field(lzf, 2), block, static_cast<unsigned int>(raw));
  if (n != raw) abort();  // our own bytes: cannot happen short of memory corruption
  return PackedList::Adopt(block);
}

void QuickList::Node::Decompress() {
  if (!lzf) return;
  packed = Decompressed();
  free(lzf);
  lzf = nullptr;
}

// --- QuickList ----------------------------------------------------------

const PackedList& QuickList::Read(size_t n, PackedList* copy) const {
  const Node& node = nodes_[n];
  if (!node.lzf) [[likely]] return node.packed;
  *copy = node.Decompressed();
  return *copy;
}

PackedList& QuickList::Open(size_t n) {
  Node& node = nodes_[n];
  node.Decompress();
  node.incompressible = false;  // it is about to change
  return node.packed;
}

void QuickList::Settle(size_t lo, size_t hi) {
  if (depth_ == 0) [[likely]] return;
  scratch_.Clear();
  size_t count = nodes_.size();
  size_t ends = std::min(depth_, count);
  for (size_t i = 0; i < ends; ++i) {
    nodes_[i].Decompress();
    nodes_[count - 1 - i].Decompress();
  }
  if (count <= 2 * depth_) return;  // no interior
  auto close = [&](size_t i) {
    if (i >= depth_ && i + depth_ < count) nodes_[i].Compress();
  };
  for (size_t i = lo; i <= hi && i < count; ++i) close(i);
  close(depth_);              // after a push at the front, the node that moved inwards
  close(count - 1 - depth_);  // and at the back
}

size_t QuickList::compressed_nodes() const {
  size_t n = 0;
  for (const Node& node : nodes_) n += node.lzf != nullptr;
  return n;
}

bool QuickList::Fits(const Node& node, std::string_view s) const {
  int fill = fill_;
  size_t count = node.size(), bytes = node.bytes();
  if (count == 0) return true;
  size_t plain = packed_threshold.load(std::memory_order_relaxed);
  if (s.size() >= plain || (count == 1 && bytes >= plain)) return false;  // a plain node
  size_t add_bytes = ElementBytes(s);
  if (fill > 0 && count >= static_cast<size_t>(fill)) return false;
  if (fill == 0 && count >= 1) return false;
  return bytes + add_bytes <= NodeBytesFor(fill);
}

void QuickList::PushFront(std::string_view s) {
  if (nodes_.empty() || !Fits(nodes_.front(), s)) nodes_.emplace_front();
  Open(0).PushFront(s);
  ++size_;
  Settle(1, 0);
}

void QuickList::PushBack(std::string_view s) {
  if (nodes_.empty() || !Fits(nodes_.back(), s)) nodes_.emplace_back();
  Open(nodes_.size() - 1).PushBack(s);
  ++size_;
  Settle(1, 0);
}

std::string QuickList::PopFront() {
  PackedList& node = Open(0);
  size_t next;
  std::string out(node.Get(node.First(), &next));
  node.Erase(node.First());
  if (node.empty()) nodes_.pop_front();
  --size_;
  Settle(1, 0);
  return out;
}

std::string QuickList::PopBack() {
  PackedList& node = Open(nodes_.size() - 1);
  size_t pos = node.Seek(node.size() - 1), next;
  std::string out(node.Get(pos, &next));
  node.Erase(pos);
  if (node.empty()) nodes_.pop_back();
  --size_;
  Settle(1, 0);
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
  const PackedList& node = Read(n, &scratch_);
  size_t next;
  return node.Get(node.Seek(k), &next);
}

void QuickList::Set(size_t i, std::string_view s) {
  auto [n, k] = Locate(i);
  if (nodes_[n].size() > 1 && s.size() >= packed_threshold.load(std::memory_order_relaxed)) {
    std::string owned(s);  // (may view the node)
    EraseIn(i, 1);
    InsertIn(i, owned);  // a plain element: a node of its own
    Settle(n == 0 ? 0 : n - 1, n + 2);
    return;
  }
  PackedList& node = Open(n);
  node.Replace(node.Seek(k), s);
  MaybeSplit(n);
  Settle(n, n + 1);
}

void QuickList::Insert(size_t i, std::string_view s) {
  if (i >= size_) return PushBack(s);
  if (i == 0) return PushFront(s);
  size_t n = Locate(i).first;
  InsertIn(i, s);
  Settle(n == 0 ? 0 : n - 1, n + 1);
}

void QuickList::InsertIn(size_t i, std::string_view s) {
  if (i >= size_) {
    if (nodes_.empty() || !Fits(nodes_.back(), s)) nodes_.emplace_back();
    Open(nodes_.size() - 1).PushBack(s);
    ++size_;
    return;
  }
  auto [n, k] = Locate(i);
  if (s.size() >= packed_threshold.load(std::memory_order_relaxed)) {  // a plain element: a node of its own
    if (k > 0) {
      SplitAt(n, k);
      ++n;
    }
    Node node;
    node.packed.PushBack(s);
    nodes_.insert(nodes_.begin() + static_cast<ptrdiff_t>(n), std::move(node));
    ++size_;
    return;
  }
  // Between two nodes, the end of the previous one may have the room.
  if (k == 0 && n > 0 && Fits(nodes_[n - 1], s)) {
    Open(n - 1).PushBack(s);
  } else {
    PackedList& node = Open(n);
    node.Insert(node.Seek(k), s);
    MaybeSplit(n);
  }
  ++size_;
}

void QuickList::Erase(size_t i, size_t count) {
  count = std::min(count, size_ - std::min(i, size_));
  if (count == 0) return;
  size_t n = Locate(i).first;
  EraseIn(i, count);
  Settle(n, n + 1);
}

void QuickList::EraseIn(size_t i, size_t count) {
  count = std::min(count, size_ - std::min(i, size_));
  if (count == 0) return;
  auto [n, k] = Locate(i);
  size_ -= count;
  while (count > 0) {
    size_t here = std::min(count, nodes_[n].size() - k);
    if (here == nodes_[n].size()) {
      nodes_.erase(nodes_.begin() + static_cast<ptrdiff_t>(n));
    } else {
      PackedList& node = Open(n);
      node.Erase(node.Seek(k), here);
      ++n;
    }
    count -= here;
    k = 0;
  }
}

void QuickList::MaybeSplit(size_t n) {
  int fill = fill_;
  PackedList& node = Open(n);
  size_t limit = NodeBytesFor(fill);
  bool over = node.bytes() > limit || (fill > 0 && node.size() > static_cast<size_t>(fill));
  if (!over || node.size() < 2) return;
  SplitAt(n, node.size() / 2);
}

void QuickList::SplitAt(size_t n, size_t k) {
  PackedList& node = Open(n);
  Node tail;
  size_t pos = node.Seek(k), end = node.End(), next;
  for (; pos < end; pos = next) tail.packed.PushBack(node.Get(pos, &next));
  node.Erase(node.Seek(k), node.size() - k);
  nodes_.insert(nodes_.begin() + static_cast<ptrdiff_t>(n) + 1, std::move(tail));
}

size_t QuickList::MemoryUsage() const {
  size_t n = sizeof(QuickList) + nodes_.size() * sizeof(Node) + scratch_.bytes();
  for (const Node& node : nodes_) n += node.held_bytes();
  return n;
}

}  // namespace larder
