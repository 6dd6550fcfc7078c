// A text with `{field}` placeholders filled from an event's fields: Kafka topics and keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ingestd/event.h"

namespace ingestd::plugins {

// A parsed template such as `logs-{service}` or `{device}/{country}`.
//
// Syntax: `{name}` is the text of the event's field `name` (a flat or dotted key, as the parser
// stored it; see Value::append_text for how values print); `{{` and `}}` are literal braces;
// everything else is literal. parse() reports the first syntax error (an unclosed or empty
// placeholder, a stray `}`) in `error` and returns false.
//
// render() appends the text for one event, or returns false and names the missing field when the
// event lacks one (a null value counts as missing). Immutable after parse(); render() is
// thread-safe and allocates only when `out` grows.
class FieldTemplate {
 public:
  bool parse(std::string_view text, std::string& error);

  // True when the template has no placeholders: the text is the same for every event.
  bool literal() const { return fields_ == 0; }
  // The whole text of a literal template.
  const std::string& text() const { return text_; }
  // The literal parts only, joined (to check the characters a topic name may have).
  std::string literal_parts() const;

  bool render(const Batch& batch, const Event& event, std::string& out,
              std::string_view& missing) const;

 private:
  struct Part {
    bool field;
    std::string text;  // literal text, or the field name
  };
  std::string text_;
  std::vector<Part> parts_;
  size_t fields_ = 0;
};

}  // namespace ingestd::plugins
