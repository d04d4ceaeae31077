// The command test fixture with the server's command table: every family,
// as RegisterFamilies lists them. Tests of a family derive from FamilyTest
// (engine/command_test_fixture.h describes Run, the matchers and the limits):
//
//   class StringFamilyTest : public FamilyTest {};
//   TEST_F(StringFamilyTest, SetGet) {
//     EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
//     EXPECT_EQ(Run({"GET", "k"}), "v");
//   }
//
// It lives here, not in src/engine, because the engine may not include the
// command families (tests/layers/check_includes.py).
#pragma once

#include "commands/families.h"
#include "engine/command_test_fixture.h"

namespace larder {

class FamilyTest : public CommandTest {
 protected:
  FamilyTest() : CommandTest(&RegisterFamilies) {}
};

}  // namespace larder
