// The keyspace table of one database on one shard: a ChainedTable of Entry
// blocks (ds/chained_table.h: the chain link is inside the entry, so no
// per-key node; incremental rehashing; scans that survive resizes).
// Not thread-safe: owned and used by a single shard thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "ds/chained_table.h"
#include "keyspace/entry.h"

namespace larder {

uint64_t HashKey(std::string_view key);

struct EntryTableTraits {
  static std::string_view Key(const Entry* e) { return e->key(); }
  static Entry*& Next(Entry* e) { return e->next; }
  static uint64_t Hash(std::string_view key) { return HashKey(key); }
  static void Free(Entry* e) { FreeEntry(e); }
};

using Table = ChainedTable<Entry, EntryTableTraits>;

}  // namespace larder
