// Reading and writing values in Redis's RDB format: the files SAVE/BGSAVE
// write and the server loads at start, the base of an AOF (its RDB
// preamble), and the payloads of DUMP/RESTORE/MIGRATE.
//
// Larder writes what Redis 7.0 writes (RDB version 10, rdb/format.h): small
// hashes and sorted sets as listpacks, sets of integers as intsets, lists as
// quicklist 2 (listpack nodes), streams as listpacks 2 with their consumer
// groups, so redis-server 7.0 loads Larder's files and redis-check-rdb
// accepts them. A hash whose fields have TTLs is written as Redis 7.4 writes
// it (type 24/25): only Redis 7.4+ and Larder read such a file
// (docs/compatibility.md). It reads versions 1..12 with every encoding those
// versions write (ziplists, zipmaps, quicklist 1, listpack sets, streams
// 1..3, 7.4 hashes with field TTLs); a module value fails the load.
//
// No I/O here beyond what a Reader/Writer is handed: the engine's
// persistence module owns files, shards and timing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "keyspace/entry.h"
#include "keyspace/hash_value.h"
#include "keyspace/zset_value.h"

namespace larder::rdb {

// ---------------------------------------------------------------- writing

// Collects bytes in a buffer; the owner drains it with Take() (to a file, a
// socket, a reply). Keeps the CRC-64 (Redis's Jones polynomial) of every
// byte taken or still pending, for the file's trailer and DUMP's payload.
class Writer {
 public:
  struct Options {
    bool compress = true;  // rdbcompression: LZF for strings over 20 bytes when it saves
    // rdbchecksum: keep the CRC-64 of what is written; else crc() is 0 and
    // the EOF trailer 8 zero bytes. A snapshot's shards write with it off:
    // the file's CRC is the writer thread's, over the framed whole.
    bool checksum = true;
    // list-max-listpack-size: where lists are cut into quicklist nodes
    // (-1..-5: 4..64 KB per node; a positive count: that many elements, up
    // to 8 KB), as Redis 7.0's quicklist cuts a list built by RPUSH.
    int list_fill = -2;
  };
  Writer() = default;
  explicit Writer(Options o) : opts_(o) {}

  const Options& options() const { return opts_; }
  size_t pending() const { return buf_.size(); }
  // The pending bytes (the CRC, if kept, is brought up to date first); the
  // buffer empties, and `next` (cleared, its capacity kept) becomes it.
  std::string Take(std::string next = {});
  // The CRC-64 of every byte written so far (0 with checksum off).
  uint64_t crc();
  uint64_t written() const { return taken_ + buf_.size(); }

  void Byte(uint8_t b) { buf_.push_back(static_cast<char>(b)); }
  void Raw(std::string_view s) { buf_.append(s); }
  void Length(uint64_t n);
  // A string: as an integer encoding if it is a canonical small integer, LZF
  // if compressing is on and saves bytes, else length + bytes.
  void String(std::string_view s);
  // Length + bytes, no special encoding (listpacks, intsets).
  void RawString(std::string_view s);
  void Millis(int64_t ms);         // 8 bytes, little endian
  void BinaryDouble(double d);     // 8 bytes, little endian IEEE 754

 private:
  Options opts_;
  std::string buf_;
  size_t crc_done_ = 0;  // bytes of buf_ already in crc_
  uint64_t crc_ = 0;
  uint64_t taken_ = 0;
};

// What precedes a key's type byte besides its TTL (Redis writes IDLE under
// an LRU maxmemory-policy, FREQ under an LFU one, nothing otherwise).
enum class AccessInfo : uint8_t { kNone, kIdle, kFreq };

// The type byte Larder writes for the entry's value.
uint8_t TypeOf(const Entry* e);
// The value's bytes (what follows the type byte and the key).
void WriteValue(Writer& w, const Entry* e);
// A whole key record: [EXPIRETIME_MS ms] [IDLE s | FREQ n] type key value.
void WriteKey(Writer& w, const Entry* e, AccessInfo access);
// DUMP's payload: type, value, RDB version (2 bytes LE), CRC-64 (8 bytes LE,
// always: rdbchecksum does not apply, as in Redis).
std::string DumpPayload(const Entry* e, Writer::Options opts = {});

// File framing.
void WriteHeader(Writer& w);  // "REDIS0010"
void WriteAux(Writer& w, std::string_view name, std::string_view value);
void WriteAuxInt(Writer& w, std::string_view name, int64_t value);
void WriteSelectDb(Writer& w, int db);
void WriteResizeDb(Writer& w, uint64_t keys, uint64_t expires);
void WriteFunction(Writer& w, std::string_view library_code);
// EOF opcode and the checksum (8 zero bytes when checksum is off).
void WriteEof(Writer& w);

// ---------------------------------------------------------------- reading

// Reads bytes from memory, or from a file descriptor through a buffer.
// Every Read* returns false at the end of the input or on malformed data,
// with error() saying what (the load's log line, the fuzzers' verdict).
class Reader {
 public:
  explicit Reader(std::string_view data);
  explicit Reader(int fd);
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& error() const { return error_; }
  bool Fail(std::string what);
  // A value that decodes to an empty collection: malformed for RESTORE, a
  // key to skip in a file (Redis 7.0 skips them: older versions could write
  // one). ClearEmpty() takes the error back when that is what it was.
  bool FailEmpty(std::string what) {
    if (error_.empty()) empty_ = true;
    return Fail(std::move(what));
  }
  bool empty_value() const { return empty_; }
  void ClearEmpty() {
    if (!empty_) return;
    empty_ = false;
    error_.clear();
  }
  uint64_t offset() const { return offset_; }
  // Keeps a CRC-64 of the bytes read from now on (a file's trailer check).
  void StartCrc();
  uint64_t crc() const { return crc_; }

  bool Read(void* dst, size_t n);
  bool Byte(uint8_t* b);
  // A length; *encoded is set when it is a special string encoding instead.
  bool Length(uint64_t* n, bool* encoded = nullptr);
  // A string in any encoding (integer, LZF, plain). Lengths are bounded by
  // what remains of the input where that is known, and by `max_len`.
  bool String(std::string* out, uint64_t max_len = 512ull << 20);
  bool Millis(int64_t* ms);
  bool Seconds(int32_t* s);
  bool BinaryDouble(double* d);
  bool TextDouble(double* d);  // ZSET type 3's scores
  // Bytes left when known (memory input), else UINT64_MAX.
  uint64_t remaining() const;

 private:
  bool Fill(size_t n);
  std::string_view mem_;
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
  bool crc_on_ = false;
  uint64_t crc_ = 0;
  std::string error_;
  bool empty_ = false;  // error_ is FailEmpty's
};

// The encodings a loaded value takes follow the server's limits, as a value
// written by commands would.
struct Limits {
  HashLimits hash;
  ZSetLimits zset;
  size_t set_max_intset_entries = 512;
  int list_fill = -2;   // list-max-listpack-size
  int list_depth = 0;  // list-compress-depth
  int64_t stream_node_max_bytes = 4096;
  int64_t stream_node_max_entries = 100;
  // LoadFile reports Progress every this many bytes
  // (loading-process-events-interval-bytes).
  uint64_t progress_bytes = 2 << 20;
};

// Reads a value of `type` (a type byte, not an opcode) into a new entry
// under `key`, with no TTL (the caller sets it). Returns null and sets
// r.error() on malformed or unsupported data (a module type says so). An
// empty collection (Redis refuses to keep one) is malformed too.
Entry* ReadValue(Reader& r, uint8_t type, std::string_view key, const Limits& limits);
// RESTORE: checks the payload's version (<= kMaxReadVersion) and CRC-64
// (always: Redis 7.0 refuses a zero one too), then decodes the value.
// *bad_version is set when the trailer is what failed (Redis's "DUMP payload
// version or checksum are wrong"); otherwise a failure is "Bad data format".
// *error (when given) says what failed, for the log.
// DEBUG SET-SKIP-CHECKSUM-VALIDATION 1 (Redis's testing switch) turns the
// CRC check off for every payload, process-wide.
inline std::atomic<bool> g_skip_payload_checksum{false};
Entry* ReadPayload(std::string_view payload, std::string_view key, const Limits& limits, bool* bad_version,
                   std::string* error = nullptr);

// What a file holds, handed over as it is read.
struct LoadHandler {
  virtual ~LoadHandler() = default;
  virtual void Aux(std::string_view name, std::string_view value) {}
  virtual void ResizeDb(int db, uint64_t keys, uint64_t expires) {}
  // A function library's code; false (with *error) fails the load.
  virtual bool Function(std::string_view code, std::string* error) = 0;
  // A key (the handler owns `e`, whose TTL is set). idle_s / freq are -1
  // when the file has none for it.
  virtual bool Key(int db, Entry* e, int64_t idle_s, int freq, std::string* error) = 0;
  // Called every so often with the bytes read so far (INFO loading_*).
  virtual void Progress(uint64_t bytes) {}
  // A key whose value is an empty collection, left out of the load.
  virtual void EmptyKeySkipped(std::string_view key) {}
};

// Reads a file from its "REDIS" header to its EOF opcode and checks its
// checksum (when non-zero). False with *error on anything malformed.
bool LoadFile(Reader& r, const Limits& limits, LoadHandler& h, std::string* error);

// CRC-64 (Jones polynomial, reflected, as Redis's crc64) of `data`
// continuing from `crc`.
uint64_t Crc64(uint64_t crc, std::string_view data);

}  // namespace larder::rdb
