// HyperLogLog in Redis's own byte format, so that a value written by either
// server (GET, later DUMP/RESTORE and RDB) reads back the same in the other
// and counts agree exactly.
//
//   header (16 bytes): "HYLL" | encoding (0 dense, 1 sparse) | 3 unused |
//                      cached cardinality, u64 little endian; bit 7 of the
//                      last byte set = cache stale
//   dense:  16384 registers of 6 bits, packed LSB first (12288 bytes)
//   sparse: run-length opcodes
//           00xxxxxx            ZERO   x+1 zero registers (1..64)
//           01xxxxxx yyyyyyyy   XZERO  xy+1 zero registers (1..16384)
//           1vvvvvxx            VAL    x+1 registers of value v+1 (1..4, 1..32)
//
// An element hashes (MurmurHash64A, Redis's seed) to a register index (low 14
// bits) and a run length of zeros + 1 in the remaining bits; a register keeps
// the largest run it has seen. Counting uses Ertl's improved estimator over
// the histogram of register values, as Redis 7 does.
//
// Sparse values grow in place opcode by opcode exactly as Redis edits them
// (split the covering opcode, then merge equal neighbouring VALs), so the
// bytes match Redis's after the same sequence of additions. A sparse value
// turns dense once a register exceeds 32 or it would grow past
// hll-sparse-max-bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace larder::hll {

constexpr int kPrecision = 14;
constexpr size_t kRegisters = size_t{1} << kPrecision;  // 16384
constexpr int kMaxRun = 64 - kPrecision + 1;            // largest register value (51)
constexpr size_t kHeaderSize = 16;
constexpr size_t kDenseSize = kHeaderSize + kRegisters * 6 / 8;
constexpr uint8_t kDense = 0;
constexpr uint8_t kSparse = 1;

// Registers one byte each, for merging several HLLs (PFCOUNT k1 k2, PFMERGE).
struct RawRegisters {
  uint8_t r[kRegisters] = {};
};

// Redis's validity test for "a string holding an HLL": magic, a known
// encoding, and the exact length when dense. Sparse opcodes are checked only
// when walked (Corrupt results below).
bool LooksValid(std::string_view v);

// An empty HLL (sparse, cached cardinality 0).
std::string NewEmpty();

inline uint8_t Encoding(std::string_view v) { return static_cast<uint8_t>(v[4]); }

// Register index and value for an element.
void HashElement(std::string_view element, uint32_t* index, uint8_t* count);

// Result of the editing operations.
enum class Edit { kUnchanged, kChanged, kCorrupt };

// Raises register `index` to `count` if lower. The dense form is edited in
// place (`v` must be kDenseSize bytes); the sparse form may grow, shrink or
// become dense. Does not touch the cached cardinality.
Edit SetRegister(std::string* v, uint32_t index, uint8_t count, size_t sparse_max_bytes);
bool DenseSetRegister(uint8_t* registers, uint32_t index, uint8_t count);
uint8_t DenseGetRegister(const uint8_t* registers, uint32_t index);

// Sparse to dense; false if the sparse opcodes are corrupt (`v` unchanged).
bool ToDense(std::string* v);

// The cached cardinality, if the cache is valid.
bool CachedCardinality(std::string_view v, uint64_t* out);
void StoreCardinality(char* v, uint64_t card);
void InvalidateCache(char* v);

// Estimates the cardinality; false if the sparse opcodes are corrupt.
bool Count(std::string_view v, uint64_t* out);
uint64_t CountRaw(const RawRegisters& regs);

// max[i] = max(max[i], register i of v); false if corrupt.
bool MergeInto(std::string_view v, RawRegisters* max);

// PFDEBUG DECODE: "z:N Z:N v:V,N ..." of a sparse value; false if dense.
bool DecodeSparse(std::string_view v, std::string* out);

}  // namespace larder::hll
