// SHA-1 (FIPS 180-1). Used where Redis uses it for non-cryptographic
// signatures: DEBUG DIGEST and DEBUG DIGEST-VALUE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace larder {

class Sha1 {
 public:
  using Digest = std::array<uint8_t, 20>;

  Sha1();
  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  Digest Final();

  static Digest Of(const void* data, size_t len) {
    Sha1 h;
    h.Update(data, len);
    return h.Final();
  }
  static Digest Of(std::string_view s) { return Of(s.data(), s.size()); }

 private:
  void Block(const uint8_t* p);

  uint32_t h_[5];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed
};

// Lowercase hex of a digest (40 characters).
std::string HexDigest(const Sha1::Digest& d);

}  // namespace larder
