#include "field_template.h"

#include <fmt/format.h>

namespace ingestd::plugins {

bool FieldTemplate::parse(std::string_view text, std::string& error) {
  text_ = std::string(text);
  parts_.clear();
  fields_ = 0;
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) parts_.push_back(Part{false, std::move(literal)});
    literal.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      literal += '}';
      ++i;
    } else if (c == '}') {
      error = fmt::format("a '}}' without its '{{' at offset {} (write '}}}}' for a brace)", i);
      return false;
    } else if (c == '{') {
      size_t end = text.find('}', i + 1);
      if (end == std::string_view::npos) {
        error = fmt::format("the placeholder at offset {} is not closed with '}}'", i);
        return false;
      }
      std::string_view name = text.substr(i + 1, end - i - 1);
      if (name.empty() || name.find('{') != std::string_view::npos) {
        error =
            fmt::format("the placeholder at offset {} needs a field name, as in {{service}}", i);
        return false;
      }
      flush_literal();
      parts_.push_back(Part{true, std::string(name)});
      ++fields_;
      i = end;
    } else {
      literal += c;
    }
  }
  flush_literal();
  if (fields_ == 0) {
    // `{{` in a literal template is a brace: keep the unescaped text.
    text_.clear();
    for (const Part& p : parts_) text_ += p.text;
  }
  return true;
}

std::string FieldTemplate::literal_parts() const {
  std::string out;
  for (const Part& p : parts_)
    if (!p.field) out += p.text;
  return out;
}

bool FieldTemplate::render(const Batch& batch, const Event& event, std::string& out,
                           std::string_view& missing) const {
  for (const Part& p : parts_) {
    if (!p.field) {
      out += p.text;
      continue;
    }
    const Value* v = batch.find(event, p.text);
    if (v == nullptr || v->type == Value::Type::kNull) {
      missing = p.text;
      return false;
    }
    v->append_text(out);
  }
  return true;
}

}  // namespace ingestd::plugins
