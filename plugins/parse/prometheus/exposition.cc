#include "exposition.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace ingestd::plugins::prometheus {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return is_alpha(c) || c == '_' || c == ':';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}
bool is_label_start(char c) {
  return is_alpha(c) || c == '_';
}
bool is_label_char(char c) {
  return is_label_start(c) || is_digit(c);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// A cursor over one line.
struct Cursor {
  std::string_view s;
  size_t i = 0;

  bool done() const { return i >= s.size(); }
  char peek() const { return s[i]; }
  // Skips blanks; true when there were any.
  bool skip_blanks() {
    size_t from = i;
    while (i < s.size() && is_blank(s[i])) ++i;
    return i > from;
  }
  std::string_view take_while(bool (*pred)(char)) {
    size_t from = i;
    while (i < s.size() && pred(s[i])) ++i;
    return s.substr(from, i - from);
  }
  std::string_view token() {
    size_t from = i;
    while (i < s.size() && !is_blank(s[i])) ++i;
    return s.substr(from, i - from);
  }
};

Line error(const char* why) {
  Line l;
  l.kind = Line::Kind::kError;
  l.error = why;
  return l;
}

bool parse_type(std::string_view word, MetricType& type) {
  static constexpr std::pair<std::string_view, MetricType> kTypes[] = {
      {"counter", MetricType::kCounter},     {"gauge", MetricType::kGauge},
      {"histogram", MetricType::kHistogram}, {"summary", MetricType::kSummary},
      {"untyped", MetricType::kUntyped},
  };
  for (const auto& [text, t] : kTypes) {
    if (word == text) {
      type = t;
      return true;
    }
  }
  return false;
}

bool valid_name(std::string_view name) {
  if (name.empty() || !is_name_start(name.front())) return false;
  for (char c : name)
    if (!is_name_char(c)) return false;
  return true;
}

Line parse_comment(Cursor& c) {
  c.skip_blanks();
  std::string_view keyword = c.token();
  bool help = keyword == "HELP";
  if (!help && keyword != "TYPE") {
    Line l;
    l.kind = Line::Kind::kComment;
    return l;
  }
  c.skip_blanks();
  Line l;
  l.name = c.token();
  if (l.name.empty())
    return error(help ? "HELP without a metric name" : "TYPE without a metric name");
  if (!valid_name(l.name)) return error("invalid metric name");
  if (help) {
    l.kind = Line::Kind::kHelp;
    // The docstring is the rest of the line after the blanks that follow the name.
    c.skip_blanks();
    l.help = c.s.substr(c.i);
    return l;
  }
  c.skip_blanks();
  std::string_view type = c.token();
  if (type.empty()) return error("TYPE without a type");
  if (!parse_type(type, l.type))
    return error("unknown metric type (counter, gauge, histogram, summary or untyped)");
  c.skip_blanks();
  if (!c.done()) return error("unexpected text after the TYPE line's type");
  l.kind = Line::Kind::kType;
  return l;
}

// Reads `"..."` at the cursor; `value` is the text between the quotes.
const char* read_quoted(Cursor& c, Label& label) {
  if (c.done() || c.peek() != '"') return "label value without its opening quote";
  size_t from = ++c.i;
  for (; c.i < c.s.size(); ++c.i) {
    char ch = c.s[c.i];
    if (ch == '"') {
      label.value = c.s.substr(from, c.i - from);
      ++c.i;
      return nullptr;
    }
    if (ch == '\\') {
      label.escaped = true;
      if (++c.i >= c.s.size()) break;
      char next = c.s[c.i];
      if (next != '\\' && next != '"' && next != 'n')
        return "invalid escape in a label value (only \\\\, \\\" and \\n)";
    }
  }
  return "unterminated label value";
}

const char* read_labels(Cursor& c, std::vector<Label>& labels) {
  ++c.i;  // '{'
  for (;;) {
    c.skip_blanks();
    if (c.done()) return "labels without their closing '}'";
    if (c.peek() == '}') {
      ++c.i;
      return nullptr;
    }
    Label label;
    if (!is_label_start(c.peek())) return "invalid label name";
    label.name = c.take_while(is_label_char);
    c.skip_blanks();
    if (c.done() || c.peek() != '=') return "label name not followed by '='";
    ++c.i;
    c.skip_blanks();
    if (const char* e = read_quoted(c, label)) return e;
    for (const Label& other : labels)
      if (other.name == label.name) return "duplicate label name";
    labels.push_back(label);
    c.skip_blanks();
    if (c.done()) return "labels without their closing '}'";
    if (c.peek() == ',') {
      ++c.i;
    } else if (c.peek() != '}') {
      return "expected ',' or '}' after a label";
    }
  }
}

}  // namespace

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kUntyped:
      break;
  }
  return "untyped";
}

bool parse_value(std::string_view text, double& out) {
  if (text.empty()) return false;
  std::string_view body = text;
  bool negative = false;
  if (body.front() == '+' || body.front() == '-') {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (iequals(body, "inf") || iequals(body, "infinity")) {
    out = negative ? -std::numeric_limits<double>::infinity()
                   : std::numeric_limits<double>::infinity();
    return true;
  }
  if (iequals(body, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (body.empty() || body.front() == '+' || body.front() == '-') return false;
  auto format = std::chars_format::general;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    // Go reads hexadecimal floats only with a binary exponent: 0x1p-3.
    if (body.find_first_of("pP") == std::string_view::npos) return false;
    body.remove_prefix(2);
    format = std::chars_format::hex;
  } else {
    // from_chars also reads "nan(...)" and "inf" spelt otherwise, which Go does not.
    for (char ch : body)
      if (!is_digit(ch) && ch != '.' && ch != 'e' && ch != 'E' && ch != '+' && ch != '-')
        return false;
  }
  double v;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), v, format);
  if (ec != std::errc{} || end != body.data() + body.size()) return false;
  out = negative ? -v : v;
  return true;
}

Line LineParser::parse(std::string_view text) {
  labels_.clear();
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  Cursor c{text};
  c.skip_blanks();
  if (c.done()) return Line{};
  if (c.peek() == '#') {
    ++c.i;
    return parse_comment(c);
  }
  Line l;
  if (!is_name_start(c.peek())) return error("invalid metric name");
  l.name = c.take_while(is_name_char);
  bool separated = c.skip_blanks();
  if (!c.done() && c.peek() == '{') {
    if (const char* e = read_labels(c, labels_)) return error(e);
    separated = true;
    c.skip_blanks();
  }
  if (c.done()) return error("sample without a value");
  if (!separated) return error("invalid character in the metric name");
  if (!parse_value(c.token(), l.value)) return error("value is not a number");
  c.skip_blanks();  // the value ends at a blank or at the end of the line
  if (!c.done()) {
    std::string_view ts = c.token();
    auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), l.timestamp_ms);
    if (ec != std::errc{} || end != ts.data() + ts.size())
      return error("timestamp is not an integer (milliseconds)");
    l.has_timestamp = true;
    c.skip_blanks();
    if (!c.done()) return error("unexpected text after the timestamp");
  }
  l.kind = Line::Kind::kSample;
  return l;
}

size_t unescape_label(std::string_view value, char* out) {
  size_t n = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    char ch = value[i];
    if (ch == '\\' && i + 1 < value.size()) {
      ch = value[++i];
      if (ch == 'n') ch = '\n';
    }
    out[n++] = ch;
  }
  return n;
}

size_t unescape_help(std::string_view help, char* out) {
  size_t n = 0;
  for (size_t i = 0; i < help.size(); ++i) {
    char ch = help[i];
    if (ch == '\\' && i + 1 < help.size() && (help[i + 1] == '\\' || help[i + 1] == 'n')) {
      ch = help[++i] == 'n' ? '\n' : '\\';
    }
    out[n++] = ch;
  }
  return n;
}

}  // namespace ingestd::plugins::prometheus
