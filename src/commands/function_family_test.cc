// FUNCTION and FCALL through the executor, in process.
#include "commands/command_test_base.h"

namespace larder {
namespace {

class FunctionFamilyTest : public FamilyTest {};

constexpr const char* kLib = "#!lua name=mylib\nredis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)";

TEST_F(FunctionFamilyTest, LoadCallDelete) {
  EXPECT_EQ(Run({"FUNCTION", "LOAD", kLib}), "mylib");
  EXPECT_THAT(Run({"FUNCTION", "LOAD", kLib}), IsError("ERR Library 'mylib' already exists"));
  EXPECT_EQ(Run({"FUNCTION", "LOAD", "REPLACE", kLib}), "mylib");
  EXPECT_EQ(Run({"FCALL", "hello", "0", "you"}), "hi you");
  EXPECT_THAT(Run({"FCALL", "nope", "0"}), IsError("ERR Function not found"));
  EXPECT_THAT(Run({"FCALL", "hello", "x"}), IsError("ERR Bad number of keys provided"));
  EXPECT_THAT(Run({"FCALL_RO", "hello", "0", "x"}), IsError("ERR Can not execute a script with write flag"));
  EXPECT_THAT(Run({"FUNCTION", "DELETE", "mylib"}), IsOk());
  EXPECT_THAT(Run({"FUNCTION", "DELETE", "mylib"}), IsError("ERR Library not found"));
}

TEST_F(FunctionFamilyTest, DumpRestore) {
  EXPECT_EQ(Run({"FUNCTION", "LOAD", kLib}), "mylib");
  RespValue dump = Run({"FUNCTION", "DUMP"});
  ASSERT_EQ(dump.type, RespValue::Type::kBulk);
  EXPECT_THAT(Run({"FUNCTION", "RESTORE", dump.str}), IsError("ERR Library mylib already exists"));
  EXPECT_THAT(Run({"FUNCTION", "FLUSH"}), IsOk());
  EXPECT_THAT(Run({"FUNCTION", "RESTORE", dump.str}), IsOk());
  EXPECT_EQ(Run({"FCALL", "hello", "0", "again"}), "hi again");
  EXPECT_THAT(Run({"FUNCTION", "RESTORE", "bad payload"}), IsError("ERR DUMP payload version or checksum are wrong"));
}

}  // namespace
}  // namespace larder
