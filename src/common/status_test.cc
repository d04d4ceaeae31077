#include "common/status.h"

#include <gtest/gtest.h>

#include <string>

namespace larder {

namespace {

OpStatus At(uint16_t i) { return static_cast<OpStatus>(i); }
constexpr uint16_t kCount = static_cast<uint16_t>(OpStatus::kStatusCount);

}  // namespace

TEST(StatusTest, EveryStatusHasAText) {
  for (uint16_t i = 0; i < kCount; ++i) {
    OpStatus s = At(i);
    std::string_view text = ErrorText(s);
    if (s == OpStatus::kOk || s == OpStatus::kSkipped) {
      EXPECT_TRUE(text.empty()) << i;
      continue;
    }
    EXPECT_FALSE(text.empty()) << "OpStatus " << i << " has no text";
    EXPECT_NE(text, "ERR internal error") << "OpStatus " << i << " is missing from the table";
    if (IsTextFragment(s)) continue;  // a piece of a line: no code of its own
    if (s == OpStatus::kPlainErr) continue;  // Redis's shared.err: the code alone
    // An error line: a code in capitals, a space, the message; never CR or LF.
    size_t sp = text.find(' ');
    ASSERT_NE(sp, std::string_view::npos) << text;
    for (char c : text.substr(0, sp)) EXPECT_TRUE(c >= 'A' && c <= 'Z') << text;
    EXPECT_EQ(text.find_first_of("\r\n"), std::string_view::npos) << text;
  }
}

TEST(StatusTest, EveryTextIsAValidFormatString) {
  // A stray brace would throw when formatted; entries take at most three
  // values, and numbers suit both "{}" and "{:f}".
  for (uint16_t i = 0; i < kCount; ++i)
    EXPECT_NO_THROW(FormatError(At(i), 1.5, 2.5, 3.5, 4.5)) << ErrorText(At(i));
}

TEST(StatusTest, TextsWithoutPlaceholdersFormatToThemselves) {
  for (uint16_t i = 0; i < kCount; ++i) {
    std::string_view text = ErrorText(At(i));
    if (text.find_first_of("{}") != std::string_view::npos) continue;
    EXPECT_EQ(FormatError(At(i)), text);
  }
}

TEST(StatusTest, FormatErrorSubstitutes) {
  EXPECT_EQ(FormatError(OpStatus::kUnknownClientType, "bogus"), "ERR Unknown client type 'bogus'");
  EXPECT_EQ(FormatError(OpStatus::kUnknownSubcommand, std::string_view("nope"), std::string("CLIENT")),
            "ERR unknown subcommand 'nope'. Try CLIENT HELP.");
  EXPECT_EQ(FormatError(OpStatus::kRulePendingWrites, size_t{3}),
            "ERR the rule still has 3 key(s) to write behind; remove it once they are flushed");
  EXPECT_EQ(FormatError(OpStatus::kProtoExpectedBulk, '+'), "ERR Protocol error: expected '$', got '+'");
  // Small unsigned integers print as numbers, not characters.
  EXPECT_EQ(FormatError(OpStatus::kHllTestRegister, 7u, uint8_t{42}, uint8_t{0}),
            "TESTFAILED Register 7 should be 42 but is 0");
  // As printf's "%f" did.
  EXPECT_EQ(FormatError(OpStatus::kInvalidLonLat, 200.0, -91.5),
            "ERR invalid longitude,latitude pair 200.000000,-91.500000");
  // An argument's braces are copied, not interpreted.
  EXPECT_EQ(FormatError(OpStatus::kHelloSyntax, "{}"), "ERR Syntax error in HELLO option '{}'");
}

TEST(StatusTest, TextsMatchRedis7) {
  EXPECT_EQ(FormatError(OpStatus::kWrongType), "WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_EQ(FormatError(OpStatus::kSyntaxError), "ERR syntax error");
  EXPECT_EQ(FormatError(OpStatus::kWrongArity, "get"), "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(FormatError(OpStatus::kWrongArity, "config|get"),
            "ERR wrong number of arguments for 'config|get' command");
  EXPECT_EQ(FormatError(OpStatus::kNotAnInteger), "ERR value is not an integer or out of range");
  EXPECT_EQ(FormatError(OpStatus::kNoAuth), "NOAUTH Authentication required.");
  EXPECT_EQ(FormatError(OpStatus::kOutOfMemory), "OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_EQ(FormatError(OpStatus::kUnknownCommand, "foo", "'a' 'b' "),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  EXPECT_EQ(FormatError(OpStatus::kInvalidExpireTime, "set"), "ERR invalid expire time in 'set' command");
  EXPECT_EQ(FormatError(OpStatus::kDebugNotAllowed),
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it "
            "from a local connection, otherwise you need to set this option in the configuration file, and then "
            "restart the server.");
}

}  // namespace larder
