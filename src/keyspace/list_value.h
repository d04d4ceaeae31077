// The value of a list key: a QuickList (ds/quick_list.h) of packed nodes
// sized by list-max-listpack-size, OBJECT ENCODING "quicklist" as Redis 7.0
// reports every list. O(1) pushes and pops at both ends, a few bytes of
// overhead per element, index lookups that skip whole nodes.
#pragma once

#include <memory>

#include "ds/quick_list.h"

namespace larder {

class ListValue : public QuickList {
 public:
  using QuickList::QuickList;
  const char* encoding() const { return "quicklist"; }
  std::unique_ptr<ListValue> Clone() const { return std::make_unique<ListValue>(*this); }
};

}  // namespace larder
