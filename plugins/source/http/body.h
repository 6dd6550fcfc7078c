// source/http: what a request body becomes, without any networking: the body's format from its
// Content-Type, gzip decompression with a size limit, and the split into one record per object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ingestd::plugins::http_source {

// `s` without the spaces, tabs and line endings around it.
std::string_view trim_space(std::string_view s);
// ASCII case-insensitive equality, as for header values.
bool iequals(std::string_view a, std::string_view b);

// How a body is cut into records.
// - kJson: one JSON object, a JSON array of objects, or several objects one after another
//   (NDJSON included, and objects spread over several lines). Objects are found by their braces,
//   strings and escapes respected; an array's members are its records.
// - kNdjson: one record per line, whatever it holds.
enum class BodyFormat { kJson, kNdjson };

// The format of a body of this Content-Type (parameters such as charset ignored, case-insensitive),
// or none when the type is not taken (the request is answered 415). An absent or empty type is
// taken as kJson. kJson: application/json, text/json and any application/<x>+json;
// kNdjson: application/x-ndjson, application/ndjson, application/jsonl,
// application/x-jsonlines, application/jsonlines, application/json-seq.
std::optional<BodyFormat> body_format(std::string_view content_type);

// Appends to `records` a view of each record in `body` (empty lines and whitespace between
// records are left out; a record keeps no surrounding whitespace). Returns false with `error`
// set when the framing is broken: an array or object that does not close, members of an array
// not separated by commas, bytes after an array. What is inside a record is not checked: the
// parser counts a record that is not valid JSON as an error.
bool split_records(std::string_view body, BodyFormat format, std::vector<std::string_view>& records,
                   std::string& error);

// Decompresses gzip bodies (RFC 1952, several members allowed) with a limit on the decompressed
// size, so that a small body cannot expand without bound (a gzip bomb). The output grows in steps
// of at most 64 KiB and decompression stops as soon as the limit is passed. One per connection:
// the zlib state and the output buffer are reused from request to request.
// Not thread-safe.
class Gunzip {
 public:
  enum class Result { kOk, kTooLarge, kCorrupt, kTruncated };

  Gunzip();
  ~Gunzip();
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;

  // Decompresses `in` into `out` (replaced; its capacity kept), at most `limit` bytes.
  Result inflate(std::string_view in, uint64_t limit, std::string& out);

 private:
  struct State;
  State* state_ = nullptr;  // made on first use
};

}  // namespace ingestd::plugins::http_source
