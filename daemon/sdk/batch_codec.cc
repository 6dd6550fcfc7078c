#include "ingestd/batch_codec.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace ingestd {
namespace {

constexpr uint8_t kHasTopic = 1;
constexpr uint8_t kHasPartition = 2;
constexpr uint8_t kHasOffset = 4;
constexpr uint8_t kHasKey = 8;
constexpr uint8_t kHasEndOffset = 16;  // version 2
constexpr uint8_t kKnownOriginV1 = kHasTopic | kHasPartition | kHasOffset | kHasKey;
constexpr uint8_t kKnownOriginV2 = kKnownOriginV1 | kHasEndOffset;

// The fewest bytes an encoded event (time, empty raw, no fields) and field (empty key, null)
// take: bounds the counts before anything is reserved.
constexpr size_t kMinEventBytes = 8 + 1 + 1;
constexpr size_t kMinFieldBytes = 1 + 1;

void put_fixed(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// Reads the encoding front to back; the first failure sticks and names what was being read.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t left() const { return in_.size() - pos_; }
  size_t pos() const { return pos_; }

  bool fail(std::string message) {
    if (error_.empty()) error_ = fmt::format("{} (at byte {})", message, pos_);
    return false;
  }

  bool fixed(uint64_t& v, int bytes, const char* what) {
    if (left() < static_cast<size_t>(bytes)) return fail(fmt::format("truncated {}", what));
    v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= uint64_t{static_cast<unsigned char>(in_[pos_ + static_cast<size_t>(i)])} << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return true;
  }

  bool i64(int64_t& v, const char* what) {
    uint64_t u = 0;
    if (!fixed(u, 8, what)) return false;
    v = static_cast<int64_t>(u);
    return true;
  }

  bool u8(uint8_t& v, const char* what) {
    uint64_t u = 0;
    if (!fixed(u, 1, what)) return false;
    v = static_cast<uint8_t>(u);
    return true;
  }

  bool varint(uint64_t& v, const char* what) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (left() == 0) return fail(fmt::format("truncated {}", what));
      auto byte = static_cast<unsigned char>(in_[pos_++]);
      if (shift == 63 && byte > 1) return fail(fmt::format("{} overflows 64 bits", what));
      v |= uint64_t{byte & 0x7fu} << shift;
      if (!(byte & 0x80)) return true;
    }
    return fail(fmt::format("{} overflows 64 bits", what));
  }

  // A count of items of at least `min_bytes` each, checked against what is left.
  bool count(uint64_t& n, size_t min_bytes, const char* what) {
    if (!varint(n, what)) return false;
    if (n > left() / min_bytes)
      return fail(fmt::format("{} {} is more than the {} bytes left can hold", what, n, left()));
    return true;
  }

  bool str(std::string_view& s, const char* what) {
    uint64_t n = 0;
    if (!varint(n, what)) return false;
    if (n > left()) return fail(fmt::format("{} of {} bytes runs past the end", what, n));
    s = in_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

bool read_value(Reader& r, Batch& batch, Value& value) {
  uint8_t type = 0;
  if (!r.u8(type, "value type")) return false;
  switch (static_cast<Value::Type>(type)) {
    case Value::Type::kNull:
      value = Value::null();
      return true;
    case Value::Type::kBool: {
      uint8_t b = 0;
      if (!r.u8(b, "bool value")) return false;
      if (b > 1) return r.fail(fmt::format("bool value {} is neither 0 nor 1", b));
      value = Value::boolean(b == 1);
      return true;
    }
    case Value::Type::kInt: {
      int64_t i = 0;
      if (!r.i64(i, "int value")) return false;
      value = Value::integer(i);
      return true;
    }
    case Value::Type::kDouble: {
      uint64_t bits = 0;
      if (!r.fixed(bits, 8, "double value")) return false;
      double d = 0;
      std::memcpy(&d, &bits, sizeof d);
      value = Value::number(d);
      return true;
    }
    case Value::Type::kString:
    case Value::Type::kRaw: {
      std::string_view s;
      if (!r.str(s, "string value")) return false;
      s = batch.copy_unpadded(s);
      value =
          static_cast<Value::Type>(type) == Value::Type::kString ? Value::string(s) : Value::raw(s);
      return true;
    }
  }
  return r.fail(fmt::format("unknown value type {}", type));
}

// Versions 1 and 2 (2 adds the origin's end offset).
BatchPtr decode_v1(Reader& r, size_t input_size, uint8_t version) {
  // The arena grows as needed; start it at the input's size so that most batches need one block.
  auto batch = std::make_unique<Batch>(std::max<size_t>(input_size, 1024));
  std::string_view s;
  if (!r.i64(batch->ingest_time_ns, "ingest time")) return nullptr;
  if (!r.str(s, "origin component")) return nullptr;
  batch->origin.component = std::string(s);
  uint8_t present = 0;
  if (!r.u8(present, "origin flags")) return nullptr;
  if (present & ~(version >= 2 ? kKnownOriginV2 : kKnownOriginV1)) {
    r.fail(fmt::format("unknown origin flags {:#x}", present));
    return nullptr;
  }
  if (present & kHasTopic) {
    if (!r.str(s, "origin topic")) return nullptr;
    batch->origin.topic = std::string(s);
  }
  if (present & kHasPartition) {
    uint64_t p = 0;
    if (!r.fixed(p, 4, "origin partition")) return nullptr;
    batch->origin.partition = static_cast<int32_t>(static_cast<uint32_t>(p));
  }
  if (present & kHasOffset) {
    int64_t offset = 0;
    if (!r.i64(offset, "origin offset")) return nullptr;
    batch->origin.offset = offset;
  }
  if (present & kHasEndOffset) {
    int64_t end = 0;
    if (!r.i64(end, "origin end offset")) return nullptr;
    batch->origin.end_offset = end;
  }
  if (present & kHasKey) {
    if (!r.str(s, "origin key")) return nullptr;
    batch->origin.key = std::string(s);
  }
  uint64_t events = 0;
  if (!r.count(events, kMinEventBytes, "event count")) return nullptr;
  batch->reserve(static_cast<size_t>(events), 0);
  uint64_t total_fields = 0;
  for (uint64_t e = 0; e < events; ++e) {
    int64_t time_ns = 0;
    if (!r.i64(time_ns, "event time") || !r.str(s, "event raw")) return nullptr;
    Event& event = batch->add(batch->copy(s), time_ns);
    uint64_t fields = 0;
    if (!r.count(fields, kMinFieldBytes, "field count")) return nullptr;
    total_fields += fields;
    if (total_fields > std::numeric_limits<uint32_t>::max()) {
      r.fail("more than 2^32 fields in one batch");
      return nullptr;
    }
    for (uint64_t f = 0; f < fields; ++f) {
      std::string_view key;
      Value value;
      if (!r.str(key, "field key")) return nullptr;
      std::string_view stored_key = batch->copy_unpadded(key);
      if (!read_value(r, *batch, value)) return nullptr;
      batch->append_field(event, stored_key, value);
    }
  }
  if (r.left() != 0) {
    r.fail(fmt::format("{} bytes after the last event", r.left()));
    return nullptr;
  }
  return batch;
}

}  // namespace

void encode_batch(const Batch& batch, std::string& out) {
  const Origin& o = batch.origin;
  // Version 1 unless version 2's addition is needed, so older builds read what they can.
  out.push_back(static_cast<char>(o.end_offset ? 2 : 1));
  put_fixed(out, static_cast<uint64_t>(batch.ingest_time_ns), 8);
  put_str(out, o.component);
  uint8_t present = (o.topic ? kHasTopic : 0) | (o.partition ? kHasPartition : 0) |
                    (o.offset ? kHasOffset : 0) | (o.key ? kHasKey : 0) |
                    (o.end_offset ? kHasEndOffset : 0);
  out.push_back(static_cast<char>(present));
  if (o.topic) put_str(out, *o.topic);
  if (o.partition) put_fixed(out, static_cast<uint32_t>(*o.partition), 4);
  if (o.offset) put_fixed(out, static_cast<uint64_t>(*o.offset), 8);
  if (o.end_offset) put_fixed(out, static_cast<uint64_t>(*o.end_offset), 8);
  if (o.key) put_str(out, *o.key);
  put_varint(out, batch.size());
  for (const Event& e : batch.events()) {
    put_fixed(out, static_cast<uint64_t>(e.time_ns), 8);
    put_str(out, e.raw);
    auto fields = batch.fields(e);
    put_varint(out, fields.size());
    for (const Field& f : fields) {
      put_str(out, f.key);
      const Value& v = f.value;
      out.push_back(static_cast<char>(v.type));
      switch (v.type) {
        case Value::Type::kNull:
          break;
        case Value::Type::kBool:
          out.push_back(v.b ? 1 : 0);
          break;
        case Value::Type::kInt:
          put_fixed(out, static_cast<uint64_t>(v.i), 8);
          break;
        case Value::Type::kDouble: {
          uint64_t bits = 0;
          std::memcpy(&bits, &v.d, sizeof bits);
          put_fixed(out, bits, 8);
          break;
        }
        case Value::Type::kString:
        case Value::Type::kRaw:
          put_str(out, v.s);
          break;
      }
    }
  }
}

BatchPtr decode_batch(std::string_view bytes, std::string& error) {
  Reader r(bytes);
  uint8_t version = 0;
  BatchPtr batch;
  if (r.u8(version, "version")) {
    switch (version) {
      case 1:
      case 2:
        batch = decode_v1(r, bytes.size(), version);
        break;
      default:
        r.fail(fmt::format("unknown batch encoding version {} (this build reads 1 to {})", version,
                           kBatchCodecVersion));
        break;
    }
  }
  if (!batch) error = r.error();
  return batch;
}

}  // namespace ingestd
