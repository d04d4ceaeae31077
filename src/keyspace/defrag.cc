#include "keyspace/defrag.h"

#include "common/defrag_alloc.h"
#include "keyspace/db.h"
#include "keyspace/entry.h"
#include "keyspace/hash_value.h"
#include "keyspace/set_value.h"
#include "keyspace/zset_value.h"

namespace larder {

uint64_t DefragStep(Db& db, uint64_t cursor, size_t max_fields, DefragCounters* c) {
  // One block: moved if its slab is sparse, counted either way.
  auto move = [c](void* p) -> void* {
    void* fresh = DefragWorthMoving(p) ? DefragMove(p) : nullptr;
    if (!fresh) {
      ++c->misses;
      return p;
    }
    ++c->hits;
    return fresh;
  };
  return db.table().ScanReplace(cursor, [&](Entry* e) {
    uint64_t hits = c->hits;
    e = static_cast<Entry*>(move(e));
    switch (e->type) {
      case ObjType::kHash: ObjectOf<HashValue>(e)->MoveBlocks(max_fields, move); break;
      case ObjType::kSet: ObjectOf<SetValue>(e)->MoveBlocks(max_fields, move); break;
      case ObjType::kZSet: ObjectOf<ZSetValue>(e)->MoveBlocks(move); break;
      default: break;  // strings are inline; lists and streams stay
    }
    ++(c->hits > hits ? c->key_hits : c->key_misses);
    return e;
  });
}

}  // namespace larder
