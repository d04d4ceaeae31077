// ZSkipList: the order of a large sorted set. Nodes are ordered by (score,
// member bytes) and every forward link carries its span (how many nodes it
// jumps), so rank lookups, rank ranges and score/lex bounds are O(log N)
// expected, and inserts and deletes touch O(log N) links (Pugh's skiplist,
// with spans as Redis's zset uses them; p = 1/4, at most 32 levels).
//
// A node is one block: [ZNode][height links][member bytes]. `hnext` is a
// spare chain link for the member → node hash table that sits beside the
// list (keyspace/zset_value.h), so a member costs one allocation.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>

namespace larder {

struct ZNode {
  struct Link {
    ZNode* forward;
    uint64_t span;
  };
  double score;
  ZNode* backward;
  ZNode* hnext;  // the member table's chain
  uint32_t len;
  uint8_t height;

  Link* links() { return reinterpret_cast<Link*>(this + 1); }
  const Link* links() const { return reinterpret_cast<const Link*>(this + 1); }
  ZNode* next() const { return links()[0].forward; }
  std::string_view member() const { return {reinterpret_cast<const char*>(links() + height), len}; }
};

class ZSkipList {
 public:
  static constexpr int kMaxHeight = 32;

  ZSkipList();
  ~ZSkipList();
  ZSkipList(const ZSkipList&) = delete;
  ZSkipList& operator=(const ZSkipList&) = delete;

  size_t size() const { return size_; }
  ZNode* first() const { return head_->links()[0].forward; }
  ZNode* last() const { return tail_; }

  // Adds (score, member), which must not be present; returns its node.
  ZNode* Insert(double score, std::string_view member);
  // Unlinks and frees `n`.
  void Erase(ZNode* n);
  // Moves `n` to `score` (in place when its neighbours allow).
  void UpdateScore(ZNode* n, double score);
  // 0-based rank of `n`.
  size_t RankOf(const ZNode* n) const;
  // The node at 0-based `rank` (< size()).
  ZNode* AtRank(size_t rank) const;
  // How many leading nodes satisfy `pred`, which must be true for a prefix
  // of the order and false after it (a score or lex lower bound).
  template <typename Pred>
  size_t CountWhile(Pred&& pred) const {
    const ZNode* x = head_;
    size_t traversed = 0;
    for (int i = height_ - 1; i >= 0; --i) {
      while (x->links()[i].forward && pred(*x->links()[i].forward)) {
        traversed += x->links()[i].span;
        x = x->links()[i].forward;
      }
    }
    return traversed;
  }
  // Bytes of the head node (the member table counts the others).
  size_t HeadBytes() const;

 private:
  static bool Before(const ZNode& a, double score, std::string_view member) {
    return a.score < score || (a.score == score && a.member() < member);
  }
  // Links `n` (its height set) at its place for n->score.
  void Link(ZNode* n);
  // Unlinks `n` without freeing it.
  void Unlink(ZNode* n);
  int RandomHeight();

  ZNode* head_;
  ZNode* tail_ = nullptr;
  size_t size_ = 0;
  int height_ = 1;
  std::minstd_rand rng_{0x5eed};
};

}  // namespace larder
