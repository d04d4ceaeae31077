#include "ds/packed_list.h"

#include "ds/varint.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace larder {

PackedList::~PackedList() { free(data_); }

PackedList::PackedList(const PackedList& other) {
  if (other.data_) {
    size_t n = other.TotalBytes();
    data_ = static_cast<char*>(malloc(n));
    if (!data_) throw std::bad_alloc();
    memcpy(data_, other.data_, n);
  }
}

PackedList& PackedList::operator=(PackedList&& other) noexcept {
  if (this != &other) {
    free(data_);
    data_ = other.data_;
    other.data_ = nullptr;
  }
  return *this;
}

uint32_t PackedList::TotalBytes() const {
  uint32_t v;
  memcpy(&v, data_, 4);
  return v;
}
uint32_t PackedList::Count() const {
  uint32_t v;
  memcpy(&v, data_ + 4, 4);
  return v;
}
void PackedList::SetTotalBytes(uint32_t v) { memcpy(data_, &v, 4); }
void PackedList::SetCount(uint32_t v) { memcpy(data_ + 4, &v, 4); }

std::string_view PackedList::Get(size_t pos, size_t* next) const {
  uint64_t len;
  size_t h = GetVarint(data_ + pos, &len);
  *next = pos + h + len;
  return {data_ + pos + h, static_cast<size_t>(len)};
}

size_t PackedList::Seek(size_t index) const {
  size_t pos = First(), end = End(), next;
  for (size_t i = 0; pos < end && i < index; ++i) {
    Get(pos, &next);
    pos = next;
  }
  return pos;
}

size_t PackedList::Find(std::string_view s, size_t step) const {
  size_t pos = First(), end = End(), next;
  size_t i = 0;
  while (pos < end) {
    std::string_view v = Get(pos, &next);
    if (i % step == 0 && v == s) return pos;
    pos = next;
    ++i;
  }
  return end;
}

void PackedList::Resize(size_t at, ptrdiff_t delta) {
  size_t total = data_ ? TotalBytes() : kHeader;
  size_t fresh = static_cast<size_t>(static_cast<ptrdiff_t>(total) + delta);
  if (delta > 0) {
    char* p = static_cast<char*>(realloc(data_, fresh));
    if (!p) throw std::bad_alloc();
    if (!data_) {
      memset(p, 0, kHeader);
    }
    data_ = p;
    memmove(data_ + at + delta, data_ + at, total - at);
  } else if (delta < 0) {
    memmove(data_ + at, data_ + at - delta, total - at + delta);
    char* p = static_cast<char*>(realloc(data_, fresh));
    if (p) data_ = p;
  }
  SetTotalBytes(static_cast<uint32_t>(fresh));
}

void PackedList::Insert(size_t pos, std::string_view s) {
  size_t need = VarintSize(s.size()) + s.size();
  if (!data_) pos = kHeader;
  Resize(pos, static_cast<ptrdiff_t>(need));
  size_t h = PutVarint(data_ + pos, s.size());
  if (!s.empty()) memcpy(data_ + pos + h, s.data(), s.size());
  SetCount(Count() + 1);
}

void PackedList::Erase(size_t pos, size_t n) {
  size_t end = pos, next;
  size_t removed = 0;
  while (removed < n && end < End()) {
    Get(end, &next);
    end = next;
    ++removed;
  }
  if (removed == 0) return;
  uint32_t count = Count() - static_cast<uint32_t>(removed);
  Resize(pos, -static_cast<ptrdiff_t>(end - pos));
  SetCount(count);
  if (count == 0) Clear();
}

void PackedList::Replace(size_t pos, std::string_view s) {
  size_t next;
  std::string_view old = Get(pos, &next);
  size_t old_len = next - pos;
  size_t new_len = VarintSize(s.size()) + s.size();
  (void)old;
  if (new_len != old_len) {
    if (new_len > old_len) Resize(pos + old_len, static_cast<ptrdiff_t>(new_len - old_len));
    else Resize(pos + new_len, -static_cast<ptrdiff_t>(old_len - new_len));
  }
  size_t h = PutVarint(data_ + pos, s.size());
  if (!s.empty()) memcpy(data_ + pos + h, s.data(), s.size());
}

void PackedList::Clear() {
  free(data_);
  data_ = nullptr;
}

}  // namespace larder
