#include "common/numbers.h"

#include <gtest/gtest.h>

namespace larder {

TEST(NumbersTest, ParseInt64Strict) {
  int64_t v;
  EXPECT_TRUE(ParseInt64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(ParseInt64("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_TRUE(ParseInt64("9223372036854775807", &v));
  EXPECT_FALSE(ParseInt64("9223372036854775808", &v));
  EXPECT_FALSE(ParseInt64("-0", &v));
  EXPECT_FALSE(ParseInt64("01", &v));
  EXPECT_FALSE(ParseInt64("+1", &v));
  EXPECT_FALSE(ParseInt64(" 1", &v));
  EXPECT_FALSE(ParseInt64("1 ", &v));
  EXPECT_FALSE(ParseInt64("", &v));
  EXPECT_FALSE(ParseInt64("-", &v));
}

TEST(NumbersTest, ParseLongDouble) {
  long double v;
  EXPECT_TRUE(ParseLongDouble("1.5", &v));
  EXPECT_TRUE(ParseLongDouble("inf", &v));
  EXPECT_TRUE(ParseLongDouble("-1e10", &v));
  EXPECT_FALSE(ParseLongDouble("nan", &v));
  EXPECT_FALSE(ParseLongDouble(" 1", &v));
  EXPECT_FALSE(ParseLongDouble("1x", &v));
  EXPECT_FALSE(ParseLongDouble("", &v));
}

TEST(NumbersTest, FormatLongDoubleHumanTrimsZeros) {
  EXPECT_EQ(FormatLongDoubleHuman(10.5L), "10.5");
  EXPECT_EQ(FormatLongDoubleHuman(3.0L), "3");
  EXPECT_EQ(FormatLongDoubleHuman(-0.0L), "0");
  EXPECT_EQ(FormatLongDoubleHuman(5.0e3L), "5000");
}

TEST(NumbersTest, DecimalLength) {
  EXPECT_EQ(DecimalLength(0), 1);
  EXPECT_EQ(DecimalLength(-10), 3);
  EXPECT_EQ(DecimalLength(INT64_MIN), 20);
}

}  // namespace larder
