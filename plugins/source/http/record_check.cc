#include "record_check.h"

#include <cstring>

#include <fmt/format.h>
#include <simdjson.h>

namespace ingestd::plugins::http_source {

namespace {

const char* kind_name(JsonKind kind) {
  switch (kind) {
    case JsonKind::kString:
      return "a string";
    case JsonKind::kNumber:
      return "a number";
    case JsonKind::kInteger:
      return "an integer";
    case JsonKind::kBool:
      return "true or false";
    case JsonKind::kObject:
      return "an object";
    case JsonKind::kArray:
      return "an array";
    case JsonKind::kAny:
      break;
  }
  return "present";
}

bool is_kind(simdjson::dom::element value, JsonKind kind) {
  using Type = simdjson::dom::element_type;
  switch (kind) {
    case JsonKind::kString:
      return value.type() == Type::STRING;
    case JsonKind::kNumber:
      return value.is_number();
    case JsonKind::kInteger:
      return value.is_int64() || value.is_uint64();
    case JsonKind::kBool:
      return value.type() == Type::BOOL;
    case JsonKind::kObject:
      return value.type() == Type::OBJECT;
    case JsonKind::kArray:
      return value.type() == Type::ARRAY;
    case JsonKind::kAny:
      return true;
  }
  return false;
}

}  // namespace

std::optional<JsonKind> json_kind(std::string_view name) {
  if (name == "string") return JsonKind::kString;
  if (name == "number") return JsonKind::kNumber;
  if (name == "integer") return JsonKind::kInteger;
  if (name == "bool") return JsonKind::kBool;
  if (name == "object") return JsonKind::kObject;
  if (name == "array") return JsonKind::kArray;
  if (name == "any") return JsonKind::kAny;
  return std::nullopt;
}

struct RecordChecker::Impl {
  simdjson::dom::parser parser;
  std::string padded;  // the record, followed by simdjson's padding
};

RecordChecker::RecordChecker() : impl_(std::make_unique<Impl>()) {}
RecordChecker::~RecordChecker() = default;
RecordChecker::RecordChecker(RecordChecker&&) noexcept = default;
RecordChecker& RecordChecker::operator=(RecordChecker&&) noexcept = default;

bool RecordChecker::check(std::string_view record, const std::vector<Requirement>& required,
                          std::string& error) {
  std::string& padded = impl_->padded;
  padded.resize(record.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), record.data(), record.size());
  simdjson::dom::element doc;
  if (auto e = impl_->parser.parse(padded.data(), record.size(), false).get(doc)) {
    error = fmt::format("not valid JSON: {}", simdjson::error_message(e));
    return false;
  }
  simdjson::dom::object object;
  if (doc.get(object) != simdjson::SUCCESS) {
    error = "not a JSON object";
    return false;
  }
  for (const Requirement& r : required) {
    simdjson::dom::element value;
    if (object.at_key(r.field).get(value) != simdjson::SUCCESS) {
      error = fmt::format("no field '{}'", r.field);
      return false;
    }
    if (!is_kind(value, r.kind)) {
      error = fmt::format("field '{}' must be {}", r.field, kind_name(r.kind));
      return false;
    }
  }
  return true;
}

}  // namespace ingestd::plugins::http_source
