#include "ds/hyperloglog.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

namespace larder::hll {
namespace {

void Add(std::string* v, std::string_view element, size_t sparse_max = 3000) {
  uint32_t index;
  uint8_t count;
  HashElement(element, &index, &count);
  ASSERT_NE(SetRegister(v, index, count, sparse_max), Edit::kCorrupt);
}

uint64_t CountOf(std::string_view v) {
  uint64_t n = 0;
  EXPECT_TRUE(Count(v, &n));
  return n;
}

TEST(HyperLogLog, EmptyIsSparseAndCountsZero) {
  std::string v = NewEmpty();
  EXPECT_TRUE(LooksValid(v));
  EXPECT_EQ(Encoding(v), kSparse);
  EXPECT_EQ(v.size(), kHeaderSize + 2);
  EXPECT_EQ(CountOf(v), 0u);
}

TEST(HyperLogLog, DenseRegistersKeepTheirNeighbours) {
  std::string v = NewEmpty();
  ASSERT_TRUE(ToDense(&v));
  ASSERT_EQ(v.size(), kDenseSize);
  auto* regs = reinterpret_cast<uint8_t*>(v.data()) + kHeaderSize;
  std::mt19937 rng(7);
  std::vector<uint8_t> want(kRegisters);
  for (uint32_t i = 0; i < kRegisters; ++i) {
    want[i] = static_cast<uint8_t>(rng() % 64);
    DenseSetRegister(regs, i, want[i]);
  }
  for (uint32_t i = 0; i < kRegisters; ++i) ASSERT_EQ(DenseGetRegister(regs, i), want[i]) << i;
}

// The sparse and dense forms count the same after the same additions, and the
// estimate stays within a few standard errors (1.04/sqrt(m) ~ 0.81%).
TEST(HyperLogLog, SparseAndDenseAgreeAndEstimateWell) {
  std::string sparse = NewEmpty();
  std::string dense = NewEmpty();
  ASSERT_TRUE(ToDense(&dense));
  uint64_t checkpoint = 10;
  for (uint64_t i = 1; i <= 200000; ++i) {
    std::string e = "element:" + std::to_string(i);
    Add(&sparse, e);
    Add(&dense, e);
    if (i == checkpoint) {
      EXPECT_EQ(CountOf(sparse), CountOf(dense)) << i;
      double err = std::abs(static_cast<double>(CountOf(dense)) - static_cast<double>(i)) / static_cast<double>(i);
      EXPECT_LT(err, 0.05) << i;
      checkpoint *= 10;
    }
  }
  EXPECT_EQ(Encoding(sparse), kDense);  // outgrew hll-sparse-max-bytes
}

TEST(HyperLogLog, SparseStaysWithinItsLimit) {
  std::string v = NewEmpty();
  for (int i = 0; i < 50; ++i) {
    Add(&v, "x" + std::to_string(i), 100);
    if (Encoding(v) == kSparse) {
      EXPECT_LE(v.size(), 100u);
    }
  }
  EXPECT_EQ(Encoding(v), kDense);
}

TEST(HyperLogLog, MergeTakesTheLargestRegister) {
  std::string a = NewEmpty(), b = NewEmpty(), both = NewEmpty();
  for (int i = 0; i < 1000; ++i) {
    Add(i % 2 ? &a : &b, std::to_string(i));
    Add(&both, std::to_string(i));
  }
  RawRegisters max;
  ASSERT_TRUE(MergeInto(a, &max));
  ASSERT_TRUE(MergeInto(b, &max));
  EXPECT_EQ(CountRaw(max), CountOf(both));
}

TEST(HyperLogLog, CorruptSparseIsReported) {
  std::string v = NewEmpty();
  v.back() = 0x00;  // XZERO now covers 16129 registers instead of 16384
  uint64_t n;
  EXPECT_FALSE(Count(v, &n));
  RawRegisters max;
  EXPECT_FALSE(MergeInto(v, &max));
  EXPECT_FALSE(ToDense(&v));
  EXPECT_EQ(SetRegister(&v, 16200, 3, 3000), Edit::kCorrupt);
}

TEST(HyperLogLog, CardinalityCache) {
  std::string v = NewEmpty();
  uint64_t n;
  EXPECT_TRUE(CachedCardinality(v, &n));
  InvalidateCache(v.data());
  EXPECT_FALSE(CachedCardinality(v, &n));
  StoreCardinality(v.data(), 123456789);
  ASSERT_TRUE(CachedCardinality(v, &n));
  EXPECT_EQ(n, 123456789u);
}

}  // namespace
}  // namespace larder::hll
