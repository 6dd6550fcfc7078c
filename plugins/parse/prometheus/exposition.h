// parse/prometheus: one line of the Prometheus text exposition format (version 0.0.4), taken
// apart without allocating. Knows nothing of batches or events, so that it is tested and fuzzed
// alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ingestd::plugins::prometheus {

enum class MetricType : uint8_t { kUntyped, kCounter, kGauge, kHistogram, kSummary };

const char* type_name(MetricType type);

struct Label {
  std::string_view name;
  std::string_view value;  // as written between the quotes: escapes still in it
  bool escaped = false;    // `value` holds a backslash: unescape() it before use
};

// What one line is.
struct Line {
  enum class Kind : uint8_t { kBlank, kComment, kHelp, kType, kSample, kError };

  Kind kind = Kind::kBlank;
  std::string_view name;  // kHelp, kType, kSample: the metric name
  std::string_view help;  // kHelp: the docstring as written (escapes still in it)
  MetricType type{};      // kType
  double value = 0;       // kSample
  bool has_timestamp = false;
  int64_t timestamp_ms = 0;  // kSample with has_timestamp
  const char* error = "";    // kError: why, a static string
};

// Reads lines of the exposition format.
//
// The grammar (https://prometheus.io/docs/instrumenting/exposition_formats/, text format 0.0.4):
//   sample  = name [ "{" [ label { "," label } [ "," ] ] "}" ] value [ timestamp ]
//   label   = label_name "=" '"' escaped text '"'   (escapes: \\ \" \n)
//   name    = [a-zA-Z_:][a-zA-Z0-9_:]*, label_name = [a-zA-Z_][a-zA-Z0-9_]*
//   value   = a float as Go's ParseFloat reads it: decimal or exponent notation, NaN, +Inf, -Inf
//             (also Inf, Infinity, any case, and hexadecimal 0x1p-3)
//   timestamp = a signed 64-bit integer, milliseconds since the epoch
//   "# HELP name docstring", "# TYPE name counter|gauge|histogram|summary|untyped";
//   other lines starting with '#' are comments.
// Tokens are separated by spaces or tabs, which may also surround label names, '=', values and
// commas inside the braces; leading and trailing blanks (and a trailing '\r') are ignored.
// A label name given twice in one sample is an error, as in Prometheus.
//
// Memory: every view points into the line given to parse(); labels() is valid until the next
// parse(). The label vector keeps its capacity, so a parser warmed up on a body allocates
// nothing more. Not thread-safe; one per thread.
class LineParser {
 public:
  Line parse(std::string_view line);
  // The labels of the last kSample line, in the order written.
  const std::vector<Label>& labels() const { return labels_; }

 private:
  std::vector<Label> labels_;
};

// Unescapes a label value (\\ \" \n) into `out`, which has room for value.size() bytes; returns
// the unescaped length. The value must come from LineParser (its escapes are valid).
size_t unescape_label(std::string_view value, char* out);
// Unescapes a HELP docstring (\\ \n) into `out` (room for help.size() bytes); other backslashes
// stay as written. Returns the unescaped length.
size_t unescape_help(std::string_view help, char* out);

// Go's ParseFloat on `text`, as the format specifies values (see LineParser).
bool parse_value(std::string_view text, double& out);

}  // namespace ingestd::plugins::prometheus
