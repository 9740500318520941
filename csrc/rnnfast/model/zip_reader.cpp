// Reading a stored zip archive (zip_reader.h). Record layouts from APPNOTE.TXT: the end of central
// directory record (4.3.16), the ZIP64 end of central directory record and locator (4.3.14, 4.3.15),
// the central directory header (4.3.12), the local file header (4.3.7) and the ZIP64 extra field
// (4.5.3). Every multi-byte field is little-endian.
#include "rnnfast/model/zip_reader.h"

#include <array>
#include <set>

#include "rnnfast/model/error.h"

namespace rnnfast::model {
namespace {

constexpr std::uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEndRecord = 0x06054b50;
constexpr std::uint32_t kZip64EndRecord = 0x06064b50, kZip64Locator = 0x07064b50;
constexpr std::size_t kEndRecordSize = 22, kZip64LocatorSize = 20, kZip64EndRecordSize = 56;
constexpr std::size_t kCentralHeaderSize = 46, kLocalHeaderSize = 30;
constexpr std::uint32_t kOverflow32 = 0xffffffffu;  // "see the ZIP64 extra field"
constexpr std::uint16_t kOverflow16 = 0xffffu;

// A bounds-checked little-endian reader over the archive: every read past the end is a damaged archive.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::size_t size() const { return size_; }
  bool has(std::uint64_t offset, std::uint64_t count) const { return offset <= size_ && count <= size_ - offset; }
  void need(std::uint64_t offset, std::uint64_t count, const char* what) const {
    if (!has(offset, count))
      invalid_model(std::string("truncated or damaged model file: the zip archive's ") + what +
                    " lies outside the file");
  }
  std::uint64_t le(std::uint64_t offset, int bytes) const {  // caller has checked the bounds
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | data_[offset + i];
    return v;
  }
  std::uint16_t u16(std::uint64_t o) const { return static_cast<std::uint16_t>(le(o, 2)); }
  std::uint32_t u32(std::uint64_t o) const { return static_cast<std::uint32_t>(le(o, 4)); }
  std::uint64_t u64(std::uint64_t o) const { return le(o, 8); }
  const std::uint8_t* at(std::uint64_t o) const { return data_ + o; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

// Where the central directory is, and how many entries it has.
struct Directory {
  std::uint64_t offset, size, entries;
  std::uint64_t end;  // where it must end: the (ZIP64) end record that follows it
};

Directory find_directory(const Bytes& b) {
  // The end record is the last thing in the file but for a comment of up to 65535 bytes: search back
  // for its signature, taking the last one whose comment ends exactly at the end of the file.
  if (b.size() < kEndRecordSize) invalid_model("truncated or damaged model file: too short for a zip archive");
  const std::size_t last = b.size() - kEndRecordSize;
  const std::size_t first = last > 65535 ? last - 65535 : 0;
  std::size_t at = last + 1;
  for (std::size_t p = last + 1; p-- > first;)
    if (b.u32(p) == kEndRecord && p + kEndRecordSize + b.u16(p + 20) == b.size()) {
      at = p;
      break;
    }
  if (at > last) invalid_model("truncated or damaged model file: no zip end of central directory record");
  if (b.u16(at + 4) != 0 || b.u16(at + 6) != 0 || b.u16(at + 8) != b.u16(at + 10))
    fail(ErrorKind::kUnsupported, "zip archives split across several disks are not supported");
  Directory d{b.u32(at + 16), b.u32(at + 12), b.u16(at + 10), at};
  const bool wants_zip64 = d.entries == kOverflow16 || d.size == kOverflow32 || d.offset == kOverflow32;
  if (at >= kZip64LocatorSize && b.u32(at - kZip64LocatorSize) == kZip64Locator) {
    const std::uint64_t loc = at - kZip64LocatorSize;
    if (b.u32(loc + 4) != 0 || b.u32(loc + 16) != 1)
      fail(ErrorKind::kUnsupported, "zip archives split across several disks are not supported");
    const std::uint64_t record = b.u64(loc + 8);
    if (record > loc || loc - record < kZip64EndRecordSize || b.u32(record) != kZip64EndRecord)
      invalid_model("truncated or damaged model file: bad ZIP64 end of central directory record");
    if (b.u32(record + 16) != 0 || b.u32(record + 20) != 0 || b.u64(record + 24) != b.u64(record + 32))
      fail(ErrorKind::kUnsupported, "zip archives split across several disks are not supported");
    d = Directory{b.u64(record + 48), b.u64(record + 40), b.u64(record + 32), record};
  } else if (wants_zip64) {
    invalid_model("truncated or damaged model file: the zip end record needs a ZIP64 record that is missing");
  }
  if (d.offset > d.end || d.end - d.offset != d.size)
    invalid_model("truncated or damaged model file: the zip central directory's offset and size do not match "
                  "where it ends");
  return d;
}

// The ZIP64 extra field (id 1) of a central directory header: the 64-bit values of those of its fields
// (uncompressed size, compressed size, local header offset, in that order) that hold 0xFFFFFFFF.
void read_zip64_extra(const Bytes& b, std::uint64_t extra, std::uint64_t extra_size, std::uint64_t* fields[3]) {
  std::uint64_t p = extra, end = extra + extra_size;
  while (end - p >= 4) {
    const std::uint16_t id = b.u16(p), len = b.u16(p + 2);
    if (end - p - 4 < len) invalid_model("truncated or damaged model file: a zip extra field overruns its header");
    if (id == 1) {
      std::uint64_t q = p + 4;
      for (int i = 0; i < 3; ++i) {
        if (*fields[i] != kOverflow32) continue;
        if (q + 8 > p + 4 + len) invalid_model("truncated or damaged model file: a short ZIP64 extra field");
        *fields[i] = b.u64(q);
        q += 8;
      }
      return;
    }
    p += 4 + len;
  }
  for (int i = 0; i < 3; ++i)
    if (*fields[i] == kOverflow32)
      invalid_model("truncated or damaged model file: a zip entry needs a ZIP64 extra field that is missing");
}

std::array<std::uint32_t, 256> crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t n = 0; n < 256; ++n) {
    std::uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

}  // namespace

std::uint32_t crc32(const std::uint8_t* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = crc_table();
  std::uint32_t c = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::vector<ZipEntry> read_stored_zip(const std::uint8_t* data, std::size_t size) {
  const Bytes b(data, size);
  const Directory dir = find_directory(b);
  std::vector<ZipEntry> entries;
  std::set<std::string> names;
  std::uint64_t p = dir.offset;
  for (std::uint64_t i = 0; i < dir.entries; ++i) {
    b.need(p, kCentralHeaderSize, "central directory");
    if (p + kCentralHeaderSize > dir.end || b.u32(p) != kCentralHeader)
      invalid_model("truncated or damaged model file: bad zip central directory header");
    const std::uint16_t flags = b.u16(p + 8), method = b.u16(p + 10);
    const std::uint32_t crc = b.u32(p + 16);
    std::uint64_t packed = b.u32(p + 20), unpacked = b.u32(p + 24), local = b.u32(p + 42);
    const std::uint64_t name_len = b.u16(p + 28), extra_len = b.u16(p + 30), comment_len = b.u16(p + 32);
    const std::uint64_t next = p + kCentralHeaderSize + name_len + extra_len + comment_len;
    if (next > dir.end) invalid_model("truncated or damaged model file: a zip central directory header overruns it");
    std::string name(reinterpret_cast<const char*>(b.at(p + kCentralHeaderSize)), name_len);
    std::uint64_t* fields[3] = {&unpacked, &packed, &local};
    read_zip64_extra(b, p + kCentralHeaderSize + name_len, extra_len, fields);
    if (flags & 1) fail(ErrorKind::kUnsupported, "zip entry '" + name + "' is encrypted, which is not supported");
    if (method != 0)
      fail(ErrorKind::kUnsupported, "zip entry '" + name + "' is compressed (method " + std::to_string(method) +
                                        "); only stored entries are supported, as rnnfast.save writes them "
                                        "(not np.savez_compressed)");
    if (packed != unpacked)
      invalid_model("truncated or damaged model file: stored zip entry '" + name + "' has different sizes");
    if (!names.insert(name).second) invalid_model("zip entry '" + name + "' appears twice in the archive");
    // The local header repeats the name; the data follows it and its own extra field.
    b.need(local, kLocalHeaderSize, "local file header");
    if (b.u32(local) != kLocalHeader)
      invalid_model("truncated or damaged model file: bad local header of zip entry '" + name + "'");
    const std::uint64_t local_name = b.u16(local + 26), local_extra = b.u16(local + 28);
    b.need(local + kLocalHeaderSize, local_name + local_extra, "local file header");
    if (local_name != name_len || std::string(reinterpret_cast<const char*>(b.at(local + kLocalHeaderSize)),
                                              local_name) != name)
      invalid_model("truncated or damaged model file: zip entry '" + name + "' has another name in its local header");
    const std::uint64_t start = local + kLocalHeaderSize + local_name + local_extra;
    if (start > dir.offset || dir.offset - start < packed)
      invalid_model("truncated or damaged model file: zip entry '" + name + "' runs past the archive's data");
    if (crc32(b.at(start), packed) != crc)
      invalid_model("truncated or damaged model file: zip entry '" + name + "' does not match its CRC-32");
    entries.push_back(ZipEntry{std::move(name), b.at(start), static_cast<std::size_t>(packed)});
    p = next;
  }
  if (p != dir.end)
    invalid_model("truncated or damaged model file: the zip central directory's size does not match its entries");
  return entries;
}

}  // namespace rnnfast::model
