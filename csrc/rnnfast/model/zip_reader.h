// Reading a zip archive held in memory (PKWARE's APPNOTE.TXT, sections 4.3 and 4.5), as far as a model
// file needs: the entries NumPy's savez writes, stored (uncompressed), with the ZIP64 extensions it
// uses. Compressed or encrypted entries and archives split across disks are refused with a clear error
// (ErrorKind::kUnsupported); anything malformed (a bad signature, an offset or size outside the archive,
// a CRC-32 that does not match, a name given twice) is ErrorKind::kInvalidModel. Nothing is read outside
// the buffer, whatever its bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rnnfast::model {

struct ZipEntry {
  std::string name;               // as stored (NumPy's savez: the array's name + ".npy")
  const std::uint8_t* data;       // the entry's bytes, inside the archive's buffer
  std::size_t size;
};

// The entries of the archive data[0, size), in the central directory's order, each checked against its
// CRC-32. The entries point into `data`, which must outlive them.
std::vector<ZipEntry> read_stored_zip(const std::uint8_t* data, std::size_t size);

// CRC-32 (APPNOTE 4.4.7: the reflected polynomial 0xEDB88320, initial and final value 0xFFFFFFFF).
std::uint32_t crc32(const std::uint8_t* data, std::size_t size);

}  // namespace rnnfast::model
