#include "cache/json_row.h"

#include <gtest/gtest.h>

namespace larder::cache {
namespace {

QueryResult Row(std::vector<std::tuple<std::string, std::optional<std::string>, ColType>> cols) {
  QueryResult r;
  r.status = QueryResult::kRow;
  for (auto& [name, value, type] : cols) {
    r.columns.push_back(name);
    r.values.push_back(value);
    r.types.push_back(type);
  }
  return r;
}

TEST(JsonRowTest, ColumnsKeepTheirTypes) {
  auto r = Row({{"i", "-42", ColType::kInteger},
                {"r", "2.5e-3", ColType::kReal},
                {"nan", "NaN", ColType::kReal},
                {"inf", "-Infinity", ColType::kReal},
                {"b", "t", ColType::kBool},
                {"c", "f", ColType::kBool},
                {"j", "{\"a\": [1, null]}", ColType::kJson},
                {"n", "12.50", ColType::kText},
                {"s", "say \"hi\"\n", ColType::kText},
                {"z", std::nullopt, ColType::kText}});
  EXPECT_EQ(RowAsJson(r),
            "{\"i\":-42,\"r\":2.5e-3,\"nan\":\"NaN\",\"inf\":\"-Infinity\",\"b\":true,\"c\":false,"
            "\"j\":{\"a\": [1, null]},\"n\":\"12.50\",\"s\":\"say \\\"hi\\\"\\n\",\"z\":null}");
}

TEST(JsonRowTest, RowsWithoutTypesAreStrings) {
  QueryResult r;
  r.columns = {"a"};
  r.values = {std::string("1")};
  EXPECT_EQ(RowAsJson(r), "{\"a\":\"1\"}");
}

TEST(JsonRowTest, NumbersAsJsonSpellsThem) {
  for (const char* ok : {"0", "-0", "7", "-12", "1.5", "1e9", "1E+9", "2.5e-3", "9007199254740993"})
    EXPECT_TRUE(IsJsonNumber(ok)) << ok;
  for (const char* bad : {"", "-", "01", "1.", ".5", "1e", "+1", "NaN", "Infinity", "0x10", "1 "})
    EXPECT_FALSE(IsJsonNumber(bad)) << bad;
}

TEST(JsonRowTest, MembersAsAStoreStatementBindsThem) {
  std::vector<std::pair<std::string, std::optional<std::string>>> m;
  ASSERT_TRUE(JsonObjectMembers(
      " {\"id\": 7, \"name\":\"caf\\u00e9 \\\"x\\\"\", \"ok\":true, \"gone\": null, \"tags\": [1, {\"a\": \"]\"}],"
      " \"pair\": \"\\ud83d\\ude00\"} ",
      &m));
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0], std::make_pair(std::string("id"), std::optional<std::string>("7")));
  EXPECT_EQ(m[1].second, "caf\xc3\xa9 \"x\"");
  EXPECT_EQ(m[2].second, "true");
  EXPECT_EQ(m[3].second, std::nullopt);
  EXPECT_EQ(m[4].second, "[1, {\"a\": \"]\"}]");
  EXPECT_EQ(m[5].second, "\xf0\x9f\x98\x80");
  EXPECT_TRUE(JsonObjectMembers("{}", &m));
  EXPECT_TRUE(m.empty());
}

TEST(JsonRowTest, AnythingButOneObjectHasNoMembers) {
  std::vector<std::pair<std::string, std::optional<std::string>>> m;
  for (const char* bad : {"", "[]", "7", "\"x\"", "{", "{\"a\"}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":01}",
                          "{\"a\":\"\\ud800\"}", "{\"a\":tru}", "{'a':1}"}) {
    EXPECT_FALSE(JsonObjectMembers(bad, &m)) << bad;
    EXPECT_TRUE(m.empty());
  }
  std::string deep(100, '[');
  EXPECT_FALSE(JsonObjectMembers("{\"a\":" + deep + "}", &m));
}

}  // namespace
}  // namespace larder::cache
