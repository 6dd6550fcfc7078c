// Value syntaxes and text helpers of the config layer: numbers, booleans, environment references
// and "did you mean" suggestions. parse_duration() and parse_size() are declared in config.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"

namespace ingestd::config::detail {

// Decimal integer with an optional sign; false on anything else or on overflow.
bool parse_int(std::string_view text, int64_t& value);
// Whether `text` is written as a decimal integer (an optional sign and digits), whatever its size:
// tells "out of range" from "not an integer" when parse_int() fails.
bool integer_syntax(std::string_view text);
// A finite decimal number ("1", "-0.5", "1e3"); false on anything else.
bool parse_double(std::string_view text, double& value);
// true/false in YAML 1.2 core spelling (true, True, TRUE and the same for false).
bool parse_bool(std::string_view text, bool& value);

// Where `text` stops being UTF-8 text, as a 0-based byte offset with a reason ("invalid UTF-8
// (byte 0xE9)", "starts with a UTF-16 (little-endian) byte order mark", "a NUL byte"); nullopt
// when it is all valid UTF-8 (a UTF-8 byte order mark is fine).
struct EncodingProblem {
  size_t offset = 0;
  std::string reason;
};
std::optional<EncodingProblem> find_encoding_problem(std::string_view text);

// Replaces ${VAR}, ${VAR:-default} (default when VAR is unset or empty) and $$ (a literal $) in
// `text`. Any other $ is kept. On failure returns false with a message in `error`.
bool substitute_env(std::string_view text, const Environment& env, std::string& out,
                    std::string& error);

// Case-insensitive Levenshtein distance.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a likely typo (distance at most
// 2, or at most a third of the word's length), the first one on ties; nullopt otherwise.
std::optional<std::string> closest(std::string_view word, std::span<const std::string> candidates);

// " (did you mean 'x'?)" or "" when nothing is close.
std::string did_you_mean(std::string_view word, std::span<const std::string> candidates);

// `text` in double quotes, with JSON escapes: used in fingerprints.
std::string quoted(std::string_view text);

}  // namespace ingestd::config::detail
