#include "keyspace/defrag.h"

#include "common/defrag_alloc.h"
#include "keyspace/db.h"
#include "keyspace/entry.h"

namespace larder {

uint64_t DefragStep(Db& db, uint64_t cursor, DefragCounters* c) {
  return db.table().ScanReplace(cursor, [c](Entry* e) {
    if (!DefragWorthMoving(e)) {
      ++c->misses;
      ++c->key_misses;
      return e;
    }
    auto* moved = static_cast<Entry*>(DefragMove(e));
    if (!moved) {
      ++c->misses;
      ++c->key_misses;
      return e;
    }
    ++c->hits;
    ++c->key_hits;
    return moved;
  });
}

}  // namespace larder
