#include "ds/quick_list.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>

namespace larder {
namespace {

std::deque<std::string> Contents(const QuickList& l) {
  std::deque<std::string> out;
  l.ForEach([&](std::string_view s) { out.emplace_back(s); });
  return out;
}

// Every operation against a std::deque model, under fills by count, by
// bytes, and with elements bigger than a node, with no compression and with
// depths 1 and 2 (elements of repeated letters compress well).
TEST(QuickListTest, AgreesWithADequeUnderEveryFillAndDepth) {
  for (int depth : {0, 1, 2})
  for (int fill : {-2, -1, 1, 4, 128, 0, -102, 104}) {
    // -102 and 104: -2 and 4 with plain nodes from 2000 bytes on.
    QuickList::packed_threshold.store(fill < -100 || fill > 100 ? 2000 : QuickList::kDefaultPackedThreshold);
    if (fill < -100) fill += 100;
    if (fill > 100) fill -= 100;
    std::mt19937_64 rng(static_cast<uint64_t>(fill + 100 + 1000 * depth));
    QuickList l(fill, depth);
    size_t most_compressed = 0;
    std::deque<std::string> model;
    for (int step = 0; step < 6000; ++step) {
      size_t len = rng() % 16 == 0 ? 5000 + rng() % 20000 : rng() % 40;
      std::string v(len, static_cast<char>('a' + rng() % 26));
      v += std::to_string(step);
      int op = static_cast<int>(rng() % 12);
      if (op < 3) {
        l.PushBack(v);
        model.push_back(v);
      } else if (op < 5) {
        l.PushFront(v);
        model.push_front(v);
      } else if (op == 5 && !model.empty()) {
        ASSERT_EQ(l.PopFront(), model.front());
        model.pop_front();
      } else if (op == 6 && !model.empty()) {
        ASSERT_EQ(l.PopBack(), model.back());
        model.pop_back();
      } else if (op == 7 && !model.empty()) {
        size_t i = rng() % model.size();
        l.Set(i, v);
        model[i] = v;
      } else if (op == 8) {
        size_t i = rng() % (model.size() + 1);
        l.Insert(i, v);
        model.insert(model.begin() + static_cast<long>(i), v);
      } else if (op == 9 && !model.empty()) {
        size_t i = rng() % model.size(), n = rng() % 5;
        l.Erase(i, n);
        model.erase(model.begin() + static_cast<long>(i),
                    model.begin() + static_cast<long>(std::min(model.size(), i + n)));
      } else if (op == 10 && !model.empty()) {
        size_t i = rng() % model.size();
        ASSERT_EQ(l.At(i), model[i]) << fill << " " << step;
      } else if (op == 11 && !model.empty()) {
        size_t i = rng() % model.size();
        bool rev = rng() & 1;
        size_t want = 1 + rng() % 50, k = 0;
        l.Walk(i, rev, [&](std::string_view s) {
          size_t at = rev ? model.size() - 1 - i - k : i + k;
          EXPECT_EQ(s, model[at]) << fill << " " << step;
          return ++k < want;
        });
        EXPECT_EQ(k, std::min(want, model.size() - i));
      }
      ASSERT_EQ(l.size(), model.size());
      // The `depth` nodes at each end are never compressed.
      size_t nodes = l.node_count(), interior = nodes > 2u * depth ? nodes - 2u * depth : 0;
      if (depth == 0) {
        ASSERT_EQ(l.compressed_nodes(), 0u);
      }
      ASSERT_LE(l.compressed_nodes(), interior) << fill << " " << depth << " " << step;
      most_compressed = std::max(most_compressed, l.compressed_nodes());
      if (step % 500 == 0) {
        ASSERT_EQ(Contents(l), model) << fill;
      }
    }
    ASSERT_EQ(Contents(l), model) << fill;
    if (depth > 0) {
      EXPECT_GT(most_compressed, 0u) << fill << " " << depth;
    }
    QuickList copy(l);
    EXPECT_EQ(Contents(copy), model);
    EXPECT_EQ(copy.compressed_nodes(), l.compressed_nodes());
  }
  QuickList::packed_threshold.store(QuickList::kDefaultPackedThreshold);
}

TEST(QuickListTest, NodesHoldWhatTheFillAllows) {
  QuickList by_count(4);
  for (int i = 0; i < 100; ++i) by_count.PushBack("x");
  EXPECT_EQ(by_count.node_count(), 25u);
  QuickList by_bytes(-2);  // 8 KB nodes
  for (int i = 0; i < 1000; ++i) by_bytes.PushBack(std::string(99, 'y'));
  EXPECT_GE(by_bytes.node_count(), 12u);
  EXPECT_LE(by_bytes.node_count(), 14u);
  // A few bytes per element on top of the bytes themselves.
  EXPECT_LT(by_bytes.MemoryUsage(), 1000u * 99 + 1000u * 4 + 16 * 8192u);
}

TEST(QuickListTest, CompressesTheInteriorAndKeepsTheEnds) {
  QuickList plain(-2), packed(-2, 1);
  for (int i = 0; i < 20000; ++i) {
    std::string v = "user:" + std::to_string(i % 100) + ":session:aaaaaaaaaaaaaaaaaaaaaaaa";
    plain.PushBack(v);
    packed.PushBack(v);
  }
  ASSERT_GT(packed.node_count(), 10u);
  // Every node but the two ends, and a fraction of the memory.
  EXPECT_EQ(packed.compressed_nodes(), packed.node_count() - 2);
  EXPECT_LT(packed.MemoryUsage() * 3, plain.MemoryUsage());
  EXPECT_EQ(Contents(packed), Contents(plain));
  EXPECT_EQ(packed.At(10000), plain.At(10000));
  // Pops at both ends reach into compressed nodes, which open as they
  // become ends.
  while (packed.size() > 100) {
    ASSERT_EQ(packed.PopFront(), plain.PopFront());
    ASSERT_EQ(packed.PopBack(), plain.PopBack());
  }
  EXPECT_EQ(Contents(packed), Contents(plain));
  // Data that does not compress stays as it is.
  QuickList noise(-2, 1);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string v(40, '\0');
    for (char& c : v) c = static_cast<char>(rng());
    noise.PushBack(v);
  }
  EXPECT_EQ(noise.compressed_nodes(), 0u);
}

}  // namespace
}  // namespace larder
