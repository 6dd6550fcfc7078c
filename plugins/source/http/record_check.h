// source/http: a route's `require`, the fields every record of the route must have, with their
// JSON types; a request with a record that lacks one is refused whole (400).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ingestd::plugins::http_source {

enum class JsonKind { kString, kNumber, kInteger, kBool, kObject, kArray, kAny };

struct Requirement {
  std::string field;  // a top-level key
  JsonKind kind = JsonKind::kAny;
};

// "string", "number", "integer", "bool", "object", "array" or "any"; nullopt for another name.
std::optional<JsonKind> json_kind(std::string_view name);

// Checks records against requirements with simdjson's DOM parser, which validates the whole
// record, so a record it passes is valid JSON too. One per connection: it keeps its parser's
// memory (about the size of the largest record) and a padded copy buffer from record to record.
// Not thread-safe.
class RecordChecker {
 public:
  RecordChecker();
  ~RecordChecker();
  RecordChecker(RecordChecker&&) noexcept;
  RecordChecker& operator=(RecordChecker&&) noexcept;

  // True when `record` is a JSON object with every required field, each of its kind (null is
  // none of them but `any`). Else false, with `error` saying which field and why.
  bool check(std::string_view record, const std::vector<Requirement>& required, std::string& error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ingestd::plugins::http_source
