#include "ds/chained_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace larder {
namespace {

struct Node {
  Node* next = nullptr;
  std::string key;
};

int g_freed = 0;

struct Traits {
  static std::string_view Key(const Node* n) { return n->key; }
  static Node*& Next(Node* n) { return n->next; }
  static uint64_t Hash(std::string_view k) { return std::hash<std::string_view>{}(k); }
  static void Free(Node* n) {
    ++g_freed;
    delete n;
  }
};

using T = ChainedTable<Node, Traits>;

Node* Make(const std::string& k) { return new Node{nullptr, k}; }

TEST(ChainedTableTest, ClearFreesEveryNodeOnce) {
  g_freed = 0;
  {
    T t;
    for (int i = 0; i < 1000; ++i) t.Insert(Make(std::to_string(i)));
    EXPECT_EQ(t.size(), 1000u);
  }
  EXPECT_EQ(g_freed, 1000);
}

// A refused growth keeps the array until chains average five nodes.
TEST(ChainedTableTest, GrowGuardHoldsTheArrayUntilFiveNodesABucket) {
  struct Guard {
    bool allow = false;
    std::vector<size_t> asked;
  } g;
  T t;
  t.set_grow_guard(
      [](void* arg, size_t bytes) {
        auto* g = static_cast<Guard*>(arg);
        g->asked.push_back(bytes);
        return g->allow;
      },
      &g);
  for (int i = 0; i < 64; ++i) t.Insert(Make(std::to_string(i)));
  while (t.rehashing()) t.RehashSteps(100);
  size_t held = t.buckets();
  ASSERT_FALSE(g.asked.empty());
  EXPECT_EQ(g.asked.back(), held * 2 * sizeof(Node*));  // the new array's bytes
  // Refused: the array stays until chains average 5 nodes, then grows anyway.
  while (t.size() < held * 5) {
    t.Insert(Make("k" + std::to_string(t.size())));
    EXPECT_EQ(t.buckets(), held);
  }
  t.Insert(Make("over"));
  EXPECT_EQ(t.buckets(), held + held * 2);  // rehashing into the doubled array
  // Allowed: it doubles at load factor 1 again, and every node is found.
  while (t.rehashing()) t.RehashSteps(100);
  g.allow = true;
  for (int i = 0; i < 64; ++i) EXPECT_NE(t.Find(std::to_string(i)), nullptr);
  size_t before = t.buckets();
  while (t.size() < before) t.Insert(Make("m" + std::to_string(t.size())));
  t.Insert(Make("next"));
  EXPECT_GT(t.buckets(), before);
}

// Random draws reach every node, with no bucket far more likely than
// chance, also while a shrink is under way after most nodes went.
TEST(ChainedTableTest, RandomReachesEveryNodeAfterShrinks) {
  T t;
  for (int i = 0; i < 20000; ++i) t.Insert(Make(std::to_string(i)));
  for (int i = 100; i < 20000; ++i) {
    Traits::Free(t.Unlink(std::to_string(i)));
    t.MaybeShrink();
  }
  ASSERT_EQ(t.size(), 100u);
  EXPECT_LE(t.buckets(), 1024u + 256u);  // shrunk (or shrinking) from 32768
  std::mt19937_64 rng(7);
  std::map<std::string, int> hits;
  for (int i = 0; i < 100000; ++i) ++hits[std::string(t.Random(rng)->key)];
  EXPECT_EQ(hits.size(), 100u);
  for (const auto& [k, n] : hits) {
    EXPECT_GT(n, 200) << k;  // 1000 expected per node
    EXPECT_LT(n, 3000) << k;
  }
}

// The scan guarantee under growth, shrinking and rehashes in progress.
TEST(ChainedTableTest, ScanSeesStableNodesWhileTheTableResizes) {
  T t;
  for (int i = 0; i < 500; ++i) t.Insert(Make("s" + std::to_string(i)));
  std::set<std::string> seen;
  uint64_t cursor = 0;
  int round = 0;
  do {
    cursor = t.Scan(cursor, [&](Node* n) { seen.insert(n->key); });
    if (round < 40) {
      for (int i = 0; i < 100; ++i) t.Insert(Make("c" + std::to_string(round * 100 + i)));
    } else if (round < 80) {
      for (int i = 0; i < 100; ++i)
        if (Node* n = t.Unlink("c" + std::to_string((round - 40) * 100 + i))) Traits::Free(n);
      t.MaybeShrink();
    }
    ++round;
  } while (cursor != 0);
  for (int i = 0; i < 500; ++i) EXPECT_TRUE(seen.count("s" + std::to_string(i))) << i;
}

// ScanReplace puts each replacement where the old node was: after a full
// walk (here while the table grows and rehashes) every key is found at its
// new node, chains intact, and the old nodes can be freed.
TEST(ChainedTableTest, ScanReplaceMovesEveryNodeInPlace) {
  T t;
  for (int i = 0; i < 3000; ++i) t.Insert(Make("k" + std::to_string(i)));
  std::map<std::string, Node*> moved;
  std::vector<Node*> old;
  uint64_t cursor = 0;
  int round = 0;
  do {
    cursor = t.ScanReplace(cursor, [&](Node* n) {
      if (moved.count(n->key)) return n;  // met again (a rehash moved its bucket): keep
      Node* copy = new Node{n->next, n->key};
      old.push_back(n);
      moved[copy->key] = copy;
      return copy;
    });
    if (round++ == 10) for (int i = 0; i < 3000; ++i) t.Insert(Make("g" + std::to_string(i)));  // a rehash starts
  } while (cursor != 0);
  for (Node* n : old) delete n;
  for (int i = 0; i < 3000; ++i) {
    std::string k = "k" + std::to_string(i);
    ASSERT_TRUE(moved.count(k)) << k;
    EXPECT_EQ(t.Find(k), moved[k]) << k;
  }
  for (int i = 0; i < 3000; ++i) EXPECT_NE(t.Find("g" + std::to_string(i)), nullptr) << i;
  EXPECT_EQ(t.size(), 6000u);
}

// Random() is uniform over nodes however they sit in chains: a chi-square
// test (as Redis's SRANDMEMBER histogram test) on a table whose hash puts
// half the keys in one chain.
struct Clumped : Traits {
  static uint64_t Hash(std::string_view k) { return k[0] == 'c' ? 0 : std::hash<std::string_view>{}(k); }
};

TEST(ChainedTableTest, RandomIsUniformEvenWithLongChains) {
  ChainedTable<Node, Clumped> t;
  for (int i = 0; i < 10; ++i) t.Insert(Make("c" + std::to_string(i)));  // one chain of ten
  for (int i = 0; i < 10; ++i) t.Insert(Make("u" + std::to_string(i)));
  std::mt19937_64 rng(5);
  std::map<std::string, int> hits;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) ++hits[t.Random(rng)->key];
  ASSERT_EQ(hits.size(), 20u);
  double expected = draws / 20.0, chi2 = 0;
  for (const auto& [k, n] : hits) chi2 += (n - expected) * (n - expected) / expected;
  EXPECT_LT(chi2, 45.3) << chi2;  // 19 degrees of freedom, p = 0.001
}

TEST(ChainedTableTest, LookupFindsDuringARehashWithoutMovingIt) {
  T t;
  int n = 0;
  while (n < 10 || !t.rehashing()) t.Insert(Make(std::to_string(n++)));  // stops as a grow starts
  size_t before = t.buckets();
  for (int i = 0; i < n; ++i) EXPECT_NE(t.Lookup(std::to_string(i)), nullptr) << i;
  EXPECT_TRUE(t.rehashing());
  EXPECT_EQ(t.buckets(), before);
  EXPECT_EQ(t.Lookup("nope"), nullptr);
}

}  // namespace
}  // namespace larder
