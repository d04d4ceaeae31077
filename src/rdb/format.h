// Constants of Redis's RDB format (the file SAVE writes, the payload DUMP
// returns), as Redis 7.0 (RDB version 10) writes them and Redis 7.4 (12)
// reads them. Names follow the format's own terms; values are the format's.
#pragma once

#include <cstdint>

namespace larder::rdb {

// What Larder writes: Redis 7.0's version, so redis-server 7.0 and
// redis-check-rdb 7.0 read Larder's files and payloads.
constexpr int kVersion = 10;
// The newest version Larder reads (Redis 7.4: hash field TTLs).
constexpr int kMaxReadVersion = 12;

// Value types (the byte before each key).
enum Type : uint8_t {
  kTypeString = 0,
  kTypeList = 1,             // linked list of strings (before 3.2)
  kTypeSet = 2,
  kTypeZSet = 3,             // scores as text (before 2.8)
  kTypeHash = 4,
  kTypeZSet2 = 5,            // scores as binary doubles
  kTypeModule = 6,           // (pre-GA module type)
  kTypeModule2 = 7,
  kTypeHashZipmap = 9,
  kTypeListZiplist = 10,
  kTypeSetIntset = 11,
  kTypeZSetZiplist = 12,
  kTypeHashZiplist = 13,
  kTypeListQuicklist = 14,   // quicklist of ziplists
  kTypeStreamListpacks = 15,
  kTypeHashListpack = 16,
  kTypeZSetListpack = 17,
  kTypeListQuicklist2 = 18,  // quicklist of listpacks (7.0)
  kTypeStreamListpacks2 = 19,  // 7.0
  kTypeSetListpack = 20,     // 7.2
  kTypeStreamListpacks3 = 21,  // 7.2
  kTypeHashMetadataPreGa = 22,  // 7.4 release candidates
  kTypeHashListpackExPreGa = 23,
  kTypeHashMetadata = 24,    // 7.4: hash with field TTLs
  kTypeHashListpackEx = 25,  // 7.4: listpack hash with field TTLs
};

// Opcodes (in place of a type byte).
enum Opcode : uint8_t {
  kOpSlotInfo = 244,       // 7.2 cluster slot info
  kOpFunction2 = 245,      // a function library's code
  kOpFunctionPreGa = 246,
  kOpModuleAux = 247,
  kOpIdle = 248,           // LRU idle seconds of the next key
  kOpFreq = 249,           // LFU counter of the next key
  kOpAux = 250,            // name/value of the file
  kOpResizeDb = 251,
  kOpExpireTimeMs = 252,
  kOpExpireTime = 253,     // seconds (old files)
  kOpSelectDb = 254,
  kOpEof = 255,
};

// Length encoding: the two high bits of the first byte.
constexpr uint8_t kLen6Bit = 0;
constexpr uint8_t kLen14Bit = 1;
constexpr uint8_t kLen32Or64 = 0x80;  // whole first byte
constexpr uint8_t kLen32 = 0x80;
constexpr uint8_t kLen64 = 0x81;
constexpr uint8_t kLenEncoded = 3;    // special string encoding follows
// Special string encodings (low 6 bits when kLenEncoded).
constexpr uint8_t kEncInt8 = 0;
constexpr uint8_t kEncInt16 = 1;
constexpr uint8_t kEncInt32 = 2;
constexpr uint8_t kEncLzf = 3;

// Module ids: a module type's value cannot be read without its module.
// Stream listpack entry flags.
constexpr int kStreamItemFlagDeleted = 1;
constexpr int kStreamItemFlagSameFields = 2;

}  // namespace larder::rdb
