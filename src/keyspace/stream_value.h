// The value of a stream key (TYPE "stream", OBJECT ENCODING "stream").
//
// Entries live in packed blocks kept in a sorted index (absl::btree_map keyed
// by each block's first ID, the role Redis's radix tree plays). A block is one
// byte string:
//
//   [varint nfields][field]...            the master fields: those of the
//                                          block's first entry
//   entry: [flags][varint ms - master.ms][zigzag seq - master.seq]
//          flags & kSameFields: [value] x nfields (names from the master)
//          else:                [varint n][field][value] x n
//
// where every string is [varint len][bytes]. Entries with the master's field
// names (the common case: one producer, one schema) cost their values and 3+
// bytes. Deletion (XDEL, exact trimming) sets kDeleted in place; a block with
// no live entry is dropped. A new block starts once the tail block holds
// stream-node-max-entries entries (live or deleted) or would hold
// stream-node-max-bytes bytes as a Redis listpack (its size is tracked
// beside the block, by listpack's encoding rules), so approximate trimming
// (MAXLEN ~) removes the same whole blocks as Redis removes nodes.
//
// Consumer groups (name → group, sorted as Redis's rax) keep a PEL (pending
// entries list: ID → delivery time, count, consumer) and their consumers,
// each with its own set of pending IDs.
//
// Runs on the owning shard only. Views handed to callbacks point into a block
// and are valid only during the callback.
#pragma once

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder {

struct StreamID {
  uint64_t ms = 0;
  uint64_t seq = 0;

  static constexpr StreamID Min() { return {0, 0}; }
  static constexpr StreamID Max() { return {UINT64_MAX, UINT64_MAX}; }
  auto operator<=>(const StreamID&) const = default;
  bool operator==(const StreamID&) const = default;
  bool IsZero() const { return ms == 0 && seq == 0; }
  // The next / previous ID; false (and 0-0) past the last / before the first.
  bool Incr();
  bool Decr();
  std::string ToString() const;
};

// Field/value pairs of one entry, pointing into its block.
using StreamFields = std::vector<std::pair<std::string_view, std::string_view>>;

struct StreamConsumer;

// One pending entry of a group.
struct StreamNack {
  int64_t delivery_time = 0;  // Unix ms of the last delivery
  uint64_t delivery_count = 1;
  StreamConsumer* consumer = nullptr;
};

struct StreamConsumer {
  std::string name;
  int64_t seen_time = 0;             // Unix ms of the last interaction
  absl::btree_set<StreamID> pending; // its entries of the group's PEL
};

struct StreamGroup {
  static constexpr int64_t kInvalidEntriesRead = -1;
  StreamID last_id;
  int64_t entries_read = kInvalidEntriesRead;
  absl::btree_map<StreamID, StreamNack> pel;
  std::map<std::string, std::unique_ptr<StreamConsumer>, std::less<>> consumers;

  StreamConsumer* FindConsumer(std::string_view name) const;
  // Creates it (seen now); null if it exists.
  StreamConsumer* CreateConsumer(std::string_view name, int64_t now_ms);
  // Drops a consumer and its pending entries; returns how many it had.
  size_t DeleteConsumer(std::string_view name);
};

struct StreamLimits {
  size_t node_max_bytes = 4096;   // 0: unlimited
  size_t node_max_entries = 100;  // 0: unlimited
};

class StreamValue {
 public:
  struct TrimArgs {
    enum Strategy { kNone, kMaxLen, kMinId } strategy = kNone;
    bool approx = false;
    int64_t limit = 0;  // 0: no limit on the entries removed
    uint64_t maxlen = 0;
    StreamID minid;
  };

  StreamValue() = default;
  StreamValue(const StreamValue& other);
  StreamValue& operator=(const StreamValue&) = delete;

  uint64_t size() const { return length_; }
  const char* encoding() const { return "stream"; }
  std::unique_ptr<StreamValue> Clone() const { return std::make_unique<StreamValue>(*this); }
  size_t MemoryUsage() const;

  // Appends an entry with `id` (> last_id(), checked by the caller).
  void Append(StreamID id, std::span<const std::string_view> field_values, const StreamLimits& limits);
  // Marks an entry deleted; false if there is no such live entry.
  bool Delete(StreamID id);
  bool Contains(StreamID id) const;
  // Removes entries from the head as XTRIM/XADD describe; returns how many.
  int64_t Trim(const TrimArgs& args);

  // Calls fn(id, fields) for live entries in [start, end], ascending (or
  // descending with `rev`), until fn returns false.
  void Range(StreamID start, StreamID end, bool rev,
             const std::function<bool(StreamID, const StreamFields&)>& fn) const;
  // The first / last live entry's ID (0-0 when empty).
  StreamID FirstId() const;
  StreamID LastLiveId() const;

  StreamID last_id() const { return last_id_; }
  void set_last_id(StreamID id) { last_id_ = id; }
  StreamID first_id() const { return first_id_; }  // recorded-first-entry-id
  StreamID max_deleted_id() const { return max_deleted_; }
  void set_max_deleted_id(StreamID id) { max_deleted_ = id; }
  uint64_t entries_added() const { return entries_added_; }
  void set_entries_added(uint64_t n) { entries_added_ = n; }
  size_t blocks() const { return blocks_.size(); }

  // Every block as the Redis stream node it mirrors (rdb/writer.cc writes
  // them as listpacks): its master ID and field names, its live and deleted
  // counts, and each entry, deleted ones too, with Redis's flag bits
  // (1: deleted, 2: same fields as the master). Views valid during fn only.
  struct NodeEntry {
    StreamID id;
    uint8_t flags;
    StreamFields fields;
  };
  struct NodeView {
    StreamID master;
    std::vector<std::string_view> master_fields;
    uint32_t live = 0;
    uint32_t deleted = 0;
    std::vector<NodeEntry> entries;
  };
  void ForEachNode(const std::function<void(const NodeView&)>& fn) const;

  // Consumer groups.
  StreamGroup* FindGroup(std::string_view name) const;
  // Null if it exists.
  StreamGroup* CreateGroup(std::string_view name, StreamID last_id, int64_t entries_read);
  bool DestroyGroup(std::string_view name);
  const std::map<std::string, std::unique_ptr<StreamGroup>, std::less<>>& groups() const { return groups_; }

  // Redis 7.0's streamEstimateDistanceFromFirstEverEntry: the entries-read
  // counter a group at `id` would have, or -1 when it cannot be known.
  int64_t EstimateEntriesRead(StreamID id) const;
  // Redis 7.0's streamRangeHasTombstones over [start, end] (Min/Max when
  // absent): a deleted entry may lie there.
  bool RangeHasTombstones(StreamID start, StreamID end) const;
  // The lag of a group as XINFO GROUPS reports it (nullopt: unknown, a null).
  std::optional<int64_t> GroupLag(const StreamGroup& g) const;

 private:
  struct Block {
    std::string data;
    uint32_t live = 0;
    uint32_t deleted = 0;
    // The bytes a Redis listpack would take for this block's entries and
    // master fields (ListpackBytes adds its header and counters): the
    // stream-node-max-bytes check uses it, so blocks end where Redis's nodes
    // end and MAXLEN ~ trims the same entries.
    size_t lp_body = 0;
  };
  static size_t ListpackBytes(const Block& b);
  static constexpr uint8_t kDeleted = 1;
  static constexpr uint8_t kSameFields = 2;

  // Calls fn(offset of the flags byte, id, flags, fields) for every entry of
  // a block (live or deleted) in order; stops when fn returns false.
  template <typename Fn>
  static void ScanBlock(StreamID master, const Block& b, Fn&& fn);
  void UpdateFirstId();

  absl::btree_map<StreamID, Block> blocks_;  // key: the block's first entry ID
  uint64_t length_ = 0;
  StreamID last_id_;
  StreamID first_id_;
  StreamID max_deleted_;
  uint64_t entries_added_ = 0;
  std::map<std::string, std::unique_ptr<StreamGroup>, std::less<>> groups_;
};

}  // namespace larder
