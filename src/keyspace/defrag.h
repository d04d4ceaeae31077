// Active defragmentation of a shard's keyspace: the walk over one database's
// table that moves entry blocks out of sparse allocator slabs
// (common/defrag_alloc.h). When and for how long it runs is the engine's
// (engine/defrag.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder {

class Db;

// INFO's active_defrag_* counters (see DefragStep).
struct DefragCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t key_hits = 0;
  uint64_t key_misses = 0;
};

// Looks at the keys of the bucket position `cursor` of `db` and moves the
// blocks that sit in sparse slabs: each key's own block, and the blocks of
// its value that nothing else points into (a small hash's or sorted set's
// packed list; the member nodes of a hash or set with at most `max_fields`
// members). Returns the next cursor (0: the table has been walked). An entry
// that moves keeps its key, value, TTL and flags; the table's slot is
// pointed at the new block, so nothing else needs telling (nothing holds an
// Entry* across a command). A hit is a block moved, a miss one left; a key
// hit a key of which some block moved.
uint64_t DefragStep(Db& db, uint64_t cursor, size_t max_fields, DefragCounters* counters);

}  // namespace larder
