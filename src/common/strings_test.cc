#include "common/strings.h"

#include <gtest/gtest.h>

namespace larder {

TEST(StringsTest, OneLineFoldsControlCharactersAndTrims) {
  EXPECT_EQ(OneLine("connection to server failed: refused\n\tIs the server running?\n"),
            "connection to server failed: refused Is the server running?");
  EXPECT_EQ(OneLine("\r\n  a\r\n\r\nb  \x01\x7f c \t"), "a b c");
  EXPECT_EQ(OneLine(""), "");
  EXPECT_EQ(OneLine("\n\n"), "");
}

TEST(StringsTest, OneLineBoundsLengthAtACharacterBoundary) {
  std::string long_text(10000, 'x');
  std::string out = OneLine(long_text, 100);
  EXPECT_EQ(out, std::string(100, 'x') + "...");
  // "é" is two bytes: a cut never splits it.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  out = OneLine(accents, 51);
  ASSERT_EQ(out.size(), 50u + 3);
  EXPECT_EQ(out.substr(0, 50), accents.substr(0, 50));
  EXPECT_EQ(OneLine(std::string(100, 'y'), 100), std::string(100, 'y'));
}

}  // namespace larder
