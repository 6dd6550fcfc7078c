#include "body.h"

#include <strings.h>

#include <cstring>

#include <fmt/format.h>

namespace ingestd::plugins::http_source {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// A cursor over a body that finds where JSON values end by their brackets and strings alone.
class Scanner {
 public:
  explicit Scanner(std::string_view body) : p_(body.data()), end_(body.data() + body.size()) {}

  bool at_end() const { return p_ == end_; }
  char peek() const { return *p_; }
  const char* pos() const { return p_; }
  size_t offset(const char* begin) const { return static_cast<size_t>(p_ - begin); }
  void skip_space() {
    while (p_ != end_ && is_space(*p_)) ++p_;
  }
  void advance() { ++p_; }

  // At '{' or '[': moves past the bracket that closes it; false (at the end) when none does.
  bool skip_nested() {
    size_t depth = 0;
    while (p_ != end_) {
      char c = *p_++;
      if (c == '"') {
        if (!skip_string_rest()) return false;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) return true;
      }
    }
    return false;
  }

  // Just past an opening quote: moves past the closing one.
  bool skip_string_rest() {
    for (;;) {
      const void* hit = std::memchr(p_, '"', static_cast<size_t>(end_ - p_));
      if (!hit) {
        p_ = end_;
        return false;
      }
      const char* quote = static_cast<const char*>(hit);
      // The quote is escaped when an odd number of backslashes precede it.
      size_t slashes = 0;
      for (const char* b = quote; b != p_ && b[-1] == '\\'; --b) ++slashes;
      p_ = quote + 1;
      if (slashes % 2 == 0) return true;
    }
  }

  // A scalar (number, literal or anything unquoted): up to a delimiter of an array.
  void skip_scalar() {
    while (p_ != end_ && *p_ != ',' && *p_ != ']' && !is_space(*p_)) ++p_;
  }

  // To the end of the line (or of the body).
  void skip_line() {
    const void* nl = std::memchr(p_, '\n', static_cast<size_t>(end_ - p_));
    p_ = nl ? static_cast<const char*>(nl) : end_;
  }

 private:
  const char* p_;
  const char* end_;
};

bool split_array(Scanner& s, std::string_view body, std::vector<std::string_view>& records,
                 std::string& error) {
  const size_t open = s.offset(body.data());
  s.advance();  // '['
  s.skip_space();
  if (!s.at_end() && s.peek() == ']') {
    s.advance();
    return true;
  }
  for (;;) {
    s.skip_space();
    if (s.at_end()) break;
    const char* begin = s.pos();
    const char c = s.peek();
    if (c == ']' || c == ',') {
      error = fmt::format("a JSON array member is missing at byte {}", s.offset(body.data()));
      return false;
    }
    if (c == '{' || c == '[') {
      if (!s.skip_nested()) break;
    } else if (c == '"') {
      s.advance();
      if (!s.skip_string_rest()) break;
    } else {
      s.skip_scalar();
    }
    records.emplace_back(begin, static_cast<size_t>(s.pos() - begin));
    s.skip_space();
    if (s.at_end()) break;
    if (s.peek() == ']') {
      s.advance();
      return true;
    }
    if (s.peek() != ',') {
      error = fmt::format("a ',' or ']' is missing in the JSON array at byte {}",
                          s.offset(body.data()));
      return false;
    }
    s.advance();
  }
  error = fmt::format("the JSON array opened at byte {} does not close", open);
  return false;
}

}  // namespace

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<BodyFormat> body_format(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  type = trim_space(type);
  if (type.empty()) return BodyFormat::kJson;
  if (iequals(type, "application/json") || iequals(type, "text/json")) return BodyFormat::kJson;
  for (std::string_view t :
       {"application/x-ndjson", "application/ndjson", "application/jsonl",
        "application/x-jsonlines", "application/jsonlines", "application/json-seq"})
    if (iequals(type, t)) return BodyFormat::kNdjson;
  constexpr std::string_view kApplication = "application/", kSuffix = "+json";
  if (type.size() > kApplication.size() + kSuffix.size() &&
      iequals(type.substr(0, kApplication.size()), kApplication) &&
      iequals(type.substr(type.size() - kSuffix.size()), kSuffix))
    return BodyFormat::kJson;
  return std::nullopt;
}

bool split_records(std::string_view body, BodyFormat format, std::vector<std::string_view>& records,
                   std::string& error) {
  if (format == BodyFormat::kNdjson) {
    while (!body.empty()) {
      size_t nl = body.find('\n');
      std::string_view line = trim_space(body.substr(0, nl));
      // RFC 7464 (json-seq) starts each record with a record separator.
      while (!line.empty() && line.front() == '\x1e') line = trim_space(line.substr(1));
      if (!line.empty()) records.push_back(line);
      if (nl == std::string_view::npos) break;
      body.remove_prefix(nl + 1);
    }
    return true;
  }
  Scanner s(body);
  for (;;) {
    s.skip_space();
    if (s.at_end()) return true;
    const char* begin = s.pos();
    if (s.peek() == '[') {
      if (!split_array(s, body, records, error)) return false;
      continue;
    }
    if (s.peek() == '{') {
      if (!s.skip_nested()) {
        error = fmt::format("the JSON object opened at byte {} does not close",
                            static_cast<size_t>(begin - body.data()));
        return false;
      }
    } else {
      s.skip_line();  // not an object: one record per line, which the parser counts as an error
    }
    records.push_back(trim_space({begin, static_cast<size_t>(s.pos() - begin)}));
  }
}

}  // namespace ingestd::plugins::http_source
