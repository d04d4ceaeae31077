// The value of a list key: a deque of strings (OBJECT ENCODING "quicklist", as
// Redis 7.0 reports every list). O(1) push/pop at both ends and indexing.
// A packed encoding for small lists is a memory optimisation for later.
#pragma once

#include <deque>
#include <memory>
#include <string>

namespace larder {

class ListValue {
 public:
  std::deque<std::string> items;

  size_t size() const { return items.size(); }
  const char* encoding() const { return "quicklist"; }
  std::unique_ptr<ListValue> Clone() const { return std::make_unique<ListValue>(*this); }
  size_t MemoryUsage() const {
    size_t n = sizeof(ListValue) + items.size() * sizeof(std::string);
    for (const auto& s : items)
      if (s.capacity() > 15) n += s.capacity() + 1;
    return n;
  }
};

}  // namespace larder
