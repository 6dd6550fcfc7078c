#include "ingestd/json.h"

#include <charconv>
#include <cmath>

namespace ingestd::json {

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the pending run of characters that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void append_value(std::string& out, const Value& v) {
  switch (v.type) {
    case Value::Type::kString:
      append_string(out, v.s);
      break;
    case Value::Type::kDouble:
      if (!std::isfinite(v.d)) {
        out += "null";  // JSON has no NaN or infinity
        break;
      }
      [[fallthrough]];
    default:
      v.append_text(out);
  }
}

void append_fields(std::string& out, const Batch& batch, const Event& event) {
  out += '{';
  bool first = true;
  for (const Field& f : batch.fields(event)) {
    if (!first) out += ',';
    first = false;
    append_string(out, f.key);
    out += ':';
    append_value(out, f.value);
  }
  out += '}';
}

void append_line(std::string& out, const Batch& batch, const Event& event, Encoding encoding) {
  bool raw = encoding == Encoding::kRaw || (encoding == Encoding::kAuto && !event.raw.empty());
  if (raw)
    out += event.raw;
  else
    append_fields(out, batch, event);
  out += '\n';
}

Encoding encoding_from(std::string_view name) {
  if (name == "json") return Encoding::kJson;
  if (name == "raw") return Encoding::kRaw;
  return Encoding::kAuto;
}

}  // namespace ingestd::json
