// Redis's dataset signatures (DEBUG DIGEST, DEBUG DIGEST-VALUE): SHA-1
// mixes over keys, values and whether a key has a TTL, built so that equal
// content gives equal digests whatever the encoding:
//
//   xor(d, data):  d ^= SHA1(data)               (order-free: sets, hashes...)
//   mix(d, data):  d = SHA1(d ^ SHA1(data))      (ordered: list elements)
//
// A value's digest mixes its type (big-endian uint32) and its content:
// a string, and each list element in order, is mixed; each set member is
// xored; each hash field and sorted-set member is an element digest of its
// own (zero, mix field or member, mix value or score as "%.17g") that is
// xored in. Then "!!expire!!" is xored in if the key has a TTL. The dataset's
// digest mixes, for each non-empty database in order, the database index
// (big-endian uint32), then xors in each key's digest (zero, mix the key,
// then its value as above).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/sha1.h"
#include "keyspace/entry.h"

namespace larder {

using Digest = Sha1::Digest;

void XorDigest(Digest* d, std::string_view data);
void MixDigest(Digest* d, std::string_view data);
// d ^= other, bytewise (no hashing).
inline void XorInto(Digest* d, const Digest& other) {
  for (size_t i = 0; i < d->size(); ++i) (*d)[i] ^= other[i];
}
inline std::string_view AsBytes(const Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

// Mixes the value of `e` (type, content, TTL flag) into `d`: DEBUG
// DIGEST-VALUE starts it from zero.
void MixValueDigest(const Entry* e, Digest* d);
// One key's contribution to the dataset digest: SHA1 of the digest of its
// name mixed with its value. A database's part is the xor of its keys'.
Digest KeyContribution(const Entry* e);
// The dataset digest from each database's part (`per_db[i]`, with
// `non_empty[i]` telling whether database i has keys).
Digest DatasetDigest(const Digest* per_db, const bool* non_empty, int databases);

}  // namespace larder
