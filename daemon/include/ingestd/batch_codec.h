// The SDK's binary encoding of a Batch: what the spool writes to disk, and what a plugin may use
// to hand batches through a byte stream.
//
// Format (all integers little-endian; "varint" is unsigned LEB128, at most 10 bytes):
//   u8 version                       1 or 2; a reader keeps reading every older version. The
//                                    writer uses 1 unless the batch needs 2 (an end offset).
//   versions 1 and 2:
//     i64 ingest_time_ns
//     str origin.component
//     u8  present: bit 0 topic, 1 partition, 2 offset, 3 key, version 2: 4 end_offset (other
//         bits: malformed)
//     [str topic] [i32 partition] [i64 offset] [i64 end_offset] [str key]   only those
//         present, in this order
//     varint event count, then per event:
//       i64 time_ns, str raw, varint field count, then per field:
//         str key, u8 type (Value::Type: 0 null, 1 bool, 2 int, 3 double, 4 string, 5 raw),
//         then bool: u8 0 or 1; int: i64; double: u64 of its IEEE-754 bits; string, raw: str
//   where str is a varint length and that many bytes (any bytes: NUL and invalid UTF-8 too).
// The input must end exactly after the last field.
//
// Acks are not encoded: a decoded batch has none, and the caller keeps the original's acks (or
// settles them) itself. Every string of a decoded batch is a copy in its own arena, padded as
// Batch promises.
//
// decode_batch() never throws, never reads outside `bytes`, and allocates at most a small
// constant times bytes.size(): every count is checked against the bytes left before anything is
// reserved. On malformed input it returns nullptr with a one-line reason in `error`.
// Both functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ingestd/event.h"

namespace ingestd {

inline constexpr uint8_t kBatchCodecVersion = 2;

// Appends the encoding of `batch` (version 1, or 2 when it has an end offset) to `out`.
void encode_batch(const Batch& batch, std::string& out);

// Decodes one encoded batch that spans all of `bytes`.
BatchPtr decode_batch(std::string_view bytes, std::string& error);

}  // namespace ingestd
