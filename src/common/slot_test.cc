#include "common/slot.h"

#include <gtest/gtest.h>

namespace larder {

TEST(SlotTest, KnownValues) {
  // Reference values from Redis Cluster's specification and redis-cli.
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  EXPECT_EQ(KeySlot("foo"), 12182u);
  EXPECT_EQ(KeySlot("bar"), 5061u);
}

TEST(SlotTest, HashTags) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));
  // An empty tag hashes the whole key.
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
}

}  // namespace larder

namespace {
// The definition itself: polynomial 0x1021, bit by bit.
uint16_t ReferenceCrc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc ^= static_cast<uint16_t>(c << 8);
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
  }
  return crc;
}
}  // namespace

TEST(SlotTest, SlicedCrcMatchesTheDefinitionAtEveryLength) {
  std::string s;
  uint32_t x = 12345;
  for (int len = 0; len < 200; ++len) {
    EXPECT_EQ(larder::Crc16(s), ReferenceCrc16(s)) << "length " << len;
    x = x * 1103515245 + 12345;
    s.push_back(static_cast<char>(x >> 16));
  }
}
