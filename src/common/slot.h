// Redis Cluster hash slots. The slot of a key is CRC16 (XMODEM) of the key, or
// of the part inside the first non-empty {hash tag}, modulo 16384. Larder uses
// the slot to pick the owning shard, so keys that share a tag share a shard,
// and cluster mode can later reuse the same function.
#pragma once

#include <cstdint>
#include <string_view>

namespace larder {

constexpr uint32_t kNumSlots = 16384;

uint16_t Crc16(std::string_view data);
uint32_t KeySlot(std::string_view key);

// For tests: the portable table version, and whether Crc16 uses the CPU's
// carry-less multiplication instead.
namespace slot_internal {
uint16_t Crc16WithTables(std::string_view data);
uint32_t KeySlotWithTables(std::string_view key);
bool UsesCarrylessMultiply();
}  // namespace slot_internal

}  // namespace larder
