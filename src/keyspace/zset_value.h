// The value of a sorted set: members ordered by (score, member).
//
// Small sets (up to zset-max-listpack-entries members of at most
// zset-max-listpack-value bytes) are one PackedList of alternating member and
// score (the score as its shortest exact decimal text, as Redis's listpack
// stores it): OBJECT ENCODING "listpack", a few bytes per member, and O(n)
// operations on n <= 128. Larger sets become, for good as in Redis, a
// skiplist with spans (ds/zskiplist.h) plus a member → node hash table
// (ds/chained_table.h) threaded through the same nodes ("skiplist"): ZSCORE
// and random members in O(1), inserts, deletes, ranks and range bounds in
// O(log N), ranges in O(log N + M).
//
// Readers see members as Refs (score and a view of the member) that stay
// valid until the next modification.
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ds/chained_table.h"
#include "ds/packed_list.h"
#include "ds/zskiplist.h"

namespace larder {

struct ZSetLimits {
  size_t max_listpack_entries = 128;
  size_t max_listpack_value = 64;
};

struct ZNodeTraits {
  static std::string_view Key(const ZNode* n) { return n->member(); }
  static ZNode*& Next(ZNode* n) { return n->hnext; }
  static uint64_t Hash(std::string_view m);
  static void Free(ZNode*) {}  // the skiplist owns its nodes
};

class ZSetValue {
 public:
  // A member with its score, owned (what commands build new sets from).
  struct Item {
    double score;
    std::string member;
  };
  // A member with its score, as stored.
  struct Ref {
    double score;
    std::string_view member;
  };

  ZSetValue() = default;
  ~ZSetValue();
  size_t size() const { return big_ ? big_->list.size() : packed_.size() / 2; }
  const char* encoding() const { return big_ ? "skiplist" : "listpack"; }

  std::optional<double> Score(std::string_view member) const;
  // Inserts or updates; returns true if the member is new.
  bool Set(std::string_view member, double score, const ZSetLimits& limits);
  bool Remove(std::string_view member);
  // 0-based rank in ascending order, if present.
  std::optional<size_t> Rank(std::string_view member) const;
  // Removes items [first, last) by rank.
  void EraseRanks(size_t first, size_t last);

  // How many of the lowest items satisfy `pred(const Ref&)`, which must hold
  // for a prefix of the order only (a score or lex bound): O(log N).
  template <typename Pred>
  size_t CountWhile(Pred&& pred) const {
    if (big_) return big_->list.CountWhile([&](const ZNode& n) { return pred(Ref{n.score, n.member()}); });
    size_t n = 0;
    for (const Ref& r : Decode()) {
      if (!pred(r)) break;
      ++n;
    }
    return n;
  }
  // Calls fn(const Ref&) from 0-based `rank` on, ascending, or with `rev`
  // descending from the item `rank` places below the top, while fn returns
  // true: O(log N) to start, O(1) per item.
  template <typename Fn>
  void Walk(size_t rank, bool rev, Fn&& fn) const {
    if (rank >= size()) return;
    if (big_) {
      for (ZNode* n = big_->list.AtRank(rev ? size() - 1 - rank : rank); n; n = rev ? n->backward : n->next())
        if (!fn(Ref{n->score, n->member()})) return;
      return;
    }
    auto all = Decode();
    for (size_t i = rank; i < all.size(); ++i)
      if (!fn(all[rev ? all.size() - 1 - i : i])) return;
  }
  // fn(const Ref&) for every item, ascending.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    Walk(0, false, [&](const Ref& r) {
      fn(r);
      return true;
    });
  }
  // One step of ZSCAN over the member table: fn(const Ref&) for one bucket
  // position, and the next cursor (0: done). Only for is_table().
  bool is_table() const { return big_ != nullptr; }
  template <typename Fn>
  uint64_t Scan(uint64_t cursor, Fn&& fn) const {
    return big_->index.Scan(cursor, [&](ZNode* n) { fn(Ref{n->score, n->member()}); });
  }
  // A set of `items`, which are in ascending order without repeats, in the
  // form `limits` call for (O(N): each insert lands at the list's head).
  static std::unique_ptr<ZSetValue> FromSorted(const std::vector<Item>& items, const ZSetLimits& limits);
  // A member drawn at random (O(1) expected in the large form); the set must
  // not be empty.
  Ref RandomItem(std::mt19937_64& rng) const;
  // Every item, ascending, as owned copies.
  std::vector<Item> ToVector() const;

  // Active defragmentation (keyspace/defrag.h): the packed form's block is
  // replaced by move(block). The skiplist form's nodes are linked from
  // several places (levels, the member table) and stay where they are.
  template <typename Move>
  void MoveBlocks(Move&& move) {
    if (!big_) packed_.MoveBlock(move);
  }

  std::unique_ptr<ZSetValue> Clone() const;
  // Bytes used; a skiplist set's members estimated from `samples` of them
  // (0: all).
  size_t MemoryUsage(size_t samples = 0) const;
  // Switches to the large form if the set exceeds `limits`.
  void ConvertIfNeeded(const ZSetLimits& limits);

 private:
  struct Big {
    ZSkipList list;
    ChainedTable<ZNode, ZNodeTraits> index;
  };
  // The packed form's items, ascending (views into the packed block).
  std::vector<Ref> Decode() const;
  void Encode(const std::vector<Ref>& items);

  PackedList packed_;
  std::unique_ptr<Big> big_;
};

}  // namespace larder
