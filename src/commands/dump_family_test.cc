// DUMP and MIGRATE's argument checks through the executor, in process
// (commands/command_test_base.h). MIGRATE's conversations with a real
// target are in tests/integration/test_rdb_write.py.
#include "commands/command_test_base.h"
#include "rdb/rdb.h"

namespace larder {
namespace {

class DumpFamilyTest : public FamilyTest {};

TEST_F(DumpFamilyTest, Dump) {
  EXPECT_THAT(Run({"DUMP", "nosuch"}), IsNil());
  EXPECT_THAT(Run({"SET", "k", "12345"}), IsOk());
  RespValue v = Run({"DUMP", "k"});
  ASSERT_EQ(v.type, RespValue::Type::kBulk);
  // Type 0, the integer encoding, version 10, then the CRC of all that.
  ASSERT_EQ(v.str.size(), 14u);
  EXPECT_EQ(v.str.substr(0, 6), std::string("\x00\xc1\x39\x30\x0a\x00", 6));
  uint64_t crc = 0;
  for (int i = 7; i >= 0; --i) crc = (crc << 8) | static_cast<uint8_t>(v.str[6 + static_cast<size_t>(i)]);
  EXPECT_EQ(crc, rdb::Crc64(0, v.str.substr(0, 6)));
  EXPECT_THAT(Run({"DUMP"}), IsError("ERR wrong number of arguments for 'dump' command"));
  EXPECT_THAT(Run({"DUMP", "a", "b"}), IsError("ERR wrong number of arguments for 'dump' command"));
}

TEST_F(DumpFamilyTest, MigrateArguments) {
  EXPECT_EQ(Run({"MIGRATE", "127.0.0.1", "1", "nosuch", "0", "100"}), "NOKEY");
  EXPECT_EQ(Run({"MIGRATE", "127.0.0.1", "1", "", "0", "100", "COPY", "KEYS", "a", "b"}), "NOKEY");
  EXPECT_THAT(Run({"MIGRATE", "127.0.0.1", "1", "k", "0", "100", "KEYS", "a"}),
              IsError("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"));
  EXPECT_THAT(Run({"MIGRATE", "127.0.0.1", "1", "k", "0", "100", "AUTH2", "u"}), IsError("ERR syntax error"));
  EXPECT_THAT(Run({"MIGRATE", "127.0.0.1", "1", "k", "0", "100", "NOPE"}), IsError("ERR syntax error"));
  EXPECT_THAT(Run({"MIGRATE", "127.0.0.1", "1", "k", "db", "100"}),
              IsError("ERR value is not an integer or out of range"));
  EXPECT_THAT(Run({"MIGRATE", "127.0.0.1", "1", "k", "0"}),
              IsError("ERR wrong number of arguments for 'migrate' command"));
  EXPECT_THAT(Run({"SET", "k", "v"}), IsOk());
  EXPECT_THAT(Run({"MIGRATE", "127.0.0.1", "1", "k", "0", "100"}),
              IsError("IOERR error or timeout connecting to the client"));
  EXPECT_EQ(Run({"GET", "k"}), "v");
}

}  // namespace
}  // namespace larder
