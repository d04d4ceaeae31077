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
#if defined(__x86_64__)
  // Crc16 takes the carry-less multiply on any x86-64 CPU made since 2010;
  // the table version is checked beside it.
  EXPECT_TRUE(larder::slot_internal::UsesCarrylessMultiply());
#endif
  std::string s;
  uint32_t x = 12345;
  for (int len = 0; len < 200; ++len) {
    EXPECT_EQ(larder::Crc16(s), ReferenceCrc16(s)) << "length " << len;
    EXPECT_EQ(larder::slot_internal::Crc16WithTables(s), ReferenceCrc16(s)) << "length " << len;
    x = x * 1103515245 + 12345;
    s.push_back(static_cast<char>(x >> 16));
  }
}

namespace {
// The slot as Redis Cluster's specification defines it, on the reference CRC.
uint32_t ReferenceKeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return ReferenceCrc16(key) & 16383;
}
}  // namespace

TEST(SlotTest, KeySlotFindsTagsAtEveryPositionAndLength) {
  // KeySlot looks for '{' eight bytes at a time: put braces in every place.
  uint32_t x = 777;
  for (int len = 0; len < 40; ++len) {
    for (int round = 0; round < 200; ++round) {
      std::string key;
      for (int i = 0; i < len; ++i) {
        x = x * 1103515245 + 12345;
        uint32_t r = (x >> 16) % 16;
        key.push_back(r == 0 ? '{' : r == 1 ? '}' : static_cast<char>('a' + r));
      }
      ASSERT_EQ(larder::KeySlot(key), ReferenceKeySlot(key)) << key;
      ASSERT_EQ(larder::slot_internal::KeySlotWithTables(key), ReferenceKeySlot(key)) << key;
    }
  }
  for (int at = 0; at < 24; ++at) {  // a single brace next to bytes of every value
    std::string key(24, '\x7a');
    key[static_cast<size_t>(at)] = '{';
    ASSERT_EQ(larder::KeySlot(key), ReferenceKeySlot(key)) << at;
    ASSERT_EQ(larder::slot_internal::KeySlotWithTables(key), ReferenceKeySlot(key)) << at;
    key[static_cast<size_t>(at)] = '\x7c';  // '{' + 1 and '{' - 1 are not braces
    ASSERT_EQ(larder::KeySlot(key), ReferenceKeySlot(key)) << at;
    ASSERT_EQ(larder::slot_internal::KeySlotWithTables(key), ReferenceKeySlot(key)) << at;
  }
}
