#include "ds/packed_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace larder {

std::vector<std::string> All(const PackedList& l) {
  std::vector<std::string> out;
  l.ForEach([&](std::string_view s) { out.emplace_back(s); });
  return out;
}

TEST(PackedListTest, InsertEraseReplace) {
  PackedList l;
  EXPECT_EQ(l.size(), 0u);
  l.PushBack("b");
  l.PushFront("a");
  l.PushBack(std::string(300, 'x'));  // two-byte length header
  l.PushBack("");
  EXPECT_EQ(All(l), (std::vector<std::string>{"a", "b", std::string(300, 'x'), ""}));
  EXPECT_EQ(l.Find("b"), l.Seek(1));
  l.Replace(l.Seek(2), "short");
  l.Replace(l.Seek(0), std::string(200, 'y'));
  EXPECT_EQ(All(l), (std::vector<std::string>{std::string(200, 'y'), "b", "short", ""}));
  l.Erase(l.Seek(1), 2);
  EXPECT_EQ(All(l), (std::vector<std::string>{std::string(200, 'y'), ""}));
  l.Erase(l.First(), 5);
  EXPECT_EQ(l.size(), 0u);
  EXPECT_EQ(l.bytes(), 0u);
}

TEST(PackedListTest, FindWithStepMatchesOnlyFields) {
  PackedList l;
  for (const char* s : {"f1", "v", "v", "f2"}) l.PushBack(s);
  EXPECT_EQ(l.Find("v", 2), l.Seek(2));
  EXPECT_EQ(l.Find("f2", 2), l.End());
  PackedList copy(l);
  EXPECT_EQ(All(copy), All(l));
}

}  // namespace larder
