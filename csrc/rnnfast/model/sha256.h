// SHA-256 (FIPS 180-4), for the checksums a model file records of each parameter: the digest of its
// C-ordered bytes, as rnnfast.save computes it with Python's hashlib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rnnfast::model {

class Sha256 {
 public:
  Sha256();
  // Appends data[0, size) to the message.
  void update(const void* data, std::size_t size);
  // The digest of everything appended, as 64 lowercase hexadecimal digits (Python's hexdigest()). Ends
  // the message: call once.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);  // one 64-byte block into state_

  std::uint32_t state_[8];
  std::uint8_t block_[64];
  std::size_t filled_ = 0;      // bytes of block_ in use
  std::uint64_t length_ = 0;    // bytes appended so far
};

// The digest of data[0, size) in one call.
std::string sha256_hex(const void* data, std::size_t size);

}  // namespace rnnfast::model
