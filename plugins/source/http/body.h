// source/http: what a request body becomes, without any networking: the body's format from its
// Content-Type, and the split into one record per object (gzip: shared/net/gunzip.h).
#pragma once

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

}  // namespace ingestd::plugins::http_source
