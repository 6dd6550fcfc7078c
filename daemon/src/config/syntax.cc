#include "config/syntax.h"

#include "ingestd/json.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

namespace ingestd::config {
namespace detail {
namespace {

__extension__ typedef unsigned __int128 U128;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A non-negative decimal number "12", "1.5" or ".5" at the start of `text`: whole + frac / scale.
// Fraction digits past the 18th are ignored. Advances `text` past it.
struct Decimal {
  U128 whole = 0;
  U128 frac = 0;
  U128 scale = 1;
};

bool take_decimal(std::string_view& text, Decimal& out) {
  constexpr U128 kWholeLimit = static_cast<U128>(1) << 64;
  constexpr U128 kScaleLimit = static_cast<U128>(1'000'000'000'000'000'000ull);
  size_t i = 0;
  bool digits = false;
  out = {};
  for (; i < text.size() && is_digit(text[i]); ++i) {
    out.whole = out.whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (out.whole > kWholeLimit) return false;
    digits = true;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (i == text.size() || !is_digit(text[i])) return false;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      digits = true;
      if (out.scale >= kScaleLimit) continue;
      out.frac = out.frac * 10 + static_cast<unsigned>(text[i] - '0');
      out.scale *= 10;
    }
  }
  if (!digits) return false;
  text.remove_prefix(i);
  return true;
}

// number * multiplier, truncated to an integer; false above INT64_MAX.
bool scale_to_int64(const Decimal& number, uint64_t multiplier, U128& total) {
  constexpr U128 kMax = static_cast<U128>(std::numeric_limits<int64_t>::max());
  total += number.whole * multiplier + number.frac * multiplier / number.scale;
  return total <= kMax;
}

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

}  // namespace

bool parse_int(std::string_view text, int64_t& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool integer_syntax(std::string_view text) {
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::optional<EncodingProblem> find_encoding_problem(std::string_view text) {
  struct Mark {
    std::string_view bytes;
    const char* name;
  };
  // UTF-32 first: its little-endian mark begins with UTF-16's.
  static constexpr Mark kMarks[] = {
      {std::string_view("\xFF\xFE\x00\x00", 4), "UTF-32 (little-endian)"},
      {std::string_view("\x00\x00\xFE\xFF", 4), "UTF-32 (big-endian)"},
      {"\xFF\xFE", "UTF-16 (little-endian)"},
      {"\xFE\xFF", "UTF-16 (big-endian)"}};
  for (const Mark& m : kMarks)
    if (text.substr(0, m.bytes.size()) == m.bytes)
      return EncodingProblem{0, fmt::format("the file is {} text (it starts with that byte order "
                                            "mark); save it as UTF-8",
                                            m.name)};
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == 0)
      return EncodingProblem{i, "a NUL byte: the file must be UTF-8 text (is it UTF-16?)"};
    size_t length = 0;
    uint32_t min = 0;
    if (byte < 0x80) {
      length = 1;
    } else if ((byte & 0xE0) == 0xC0) {
      length = 2;
      min = 0x80;
    } else if ((byte & 0xF0) == 0xE0) {
      length = 3;
      min = 0x800;
    } else if ((byte & 0xF8) == 0xF0) {
      length = 4;
      min = 0x10000;
    }
    bool ok = length != 0 && i + length <= text.size();
    uint32_t code = length > 1 ? byte & (0x7F >> length) : byte;
    for (size_t k = 1; ok && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      ok = (next & 0xC0) == 0x80;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
    if (ok && length > 1) ok = code >= min && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
    if (!ok)
      return EncodingProblem{
          i, fmt::format("invalid UTF-8 (byte 0x{:02X}): the file must be UTF-8 text", byte)};
    i += length;
  }
  return std::nullopt;
}

bool parse_double(std::string_view text, double& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+' || std::isalpha(static_cast<unsigned char>(text.front())))
    return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(value);
}

bool parse_bool(std::string_view text, bool& value) {
  if (text == "true" || text == "True" || text == "TRUE") {
    value = true;
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    value = false;
    return true;
  }
  return false;
}

bool substitute_env(std::string_view text, const Environment& env, std::string& out,
                    std::string& error) {
  out.clear();
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '$' || i + 1 == text.size()) {
      out += c;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] != '{') {
      out += c;
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = fmt::format("unterminated '${{' in '{}'", text);
      return false;
    }
    std::string_view ref = text.substr(i + 2, close - i - 2);
    std::string_view name = ref;
    std::optional<std::string_view> fallback;
    if (size_t sep = ref.find(":-"); sep != std::string_view::npos) {
      name = ref.substr(0, sep);
      fallback = ref.substr(sep + 2);
    }
    if (name.empty() || !is_name_start(name.front()) ||
        !std::all_of(name.begin(), name.end(), is_name_char)) {
      error = fmt::format("invalid environment reference '${{{}}}'", ref);
      return false;
    }
    std::optional<std::string> found = env ? env(name) : std::nullopt;
    if (fallback && (!found || found->empty())) {
      out += *fallback;
    } else if (found) {
      out += *found;
    } else {
      error = fmt::format(
          "environment variable '{}' is not set (write ${{{}:-default}} to give a default)", name,
          name);
      return false;
    }
    i = close;
  }
  return true;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitution = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest(std::string_view word, std::span<const std::string> candidates) {
  size_t limit = std::max<size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    if (d > limit || d >= std::max(word.size(), candidate.size())) continue;
    if (!best || d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, std::span<const std::string> candidates) {
  auto best = closest(word, candidates);
  return best ? fmt::format(" (did you mean '{}'?)", *best) : std::string();
}

std::string quoted(std::string_view text) {
  std::string out;
  json::append_string(out, text);
  return out;
}

}  // namespace detail

bool parse_duration(std::string_view text, int64_t& ns) {
  struct Unit {
    std::string_view suffix;
    uint64_t ns;
  };
  // Longest suffixes first so that "ms" is not read as "m".
  static constexpr Unit kUnits[] = {{"ns", 1},
                                    {"us", 1'000},
                                    {"\xC2\xB5s", 1'000},
                                    {"ms", 1'000'000},
                                    {"s", 1'000'000'000},
                                    {"m", 60'000'000'000},
                                    {"h", 3'600'000'000'000},
                                    {"d", 86'400'000'000'000}};
  detail::Decimal number;
  std::string_view rest = text;
  if (!detail::take_decimal(rest, number)) return false;
  if (rest.empty()) {
    if (number.whole != 0 || number.frac != 0)
      return false;  // a bare number needs a unit, except 0
    ns = 0;
    return true;
  }
  detail::U128 total = 0;
  // One or more number+unit parts: "1h30m".
  while (true) {
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (rest.substr(0, u.suffix.size()) == u.suffix) {
        unit = &u;
        break;
      }
    }
    if (!unit) return false;
    rest.remove_prefix(unit->suffix.size());
    if (!detail::scale_to_int64(number, unit->ns, total)) return false;
    if (rest.empty()) break;
    if (!detail::take_decimal(rest, number)) return false;
  }
  ns = static_cast<int64_t>(total);
  return true;
}

bool parse_size(std::string_view text, uint64_t& bytes) {
  struct Unit {
    std::string_view suffix;
    uint64_t bytes;
  };
  static constexpr Unit kUnits[] = {{"B", 1},
                                    {"KiB", 1ull << 10},
                                    {"MiB", 1ull << 20},
                                    {"GiB", 1ull << 30},
                                    {"TiB", 1ull << 40},
                                    {"kB", 1'000},
                                    {"KB", 1'000},
                                    {"MB", 1'000'000},
                                    {"GB", 1'000'000'000},
                                    {"TB", 1'000'000'000'000}};
  detail::Decimal number;
  std::string_view rest = text;
  if (!detail::take_decimal(rest, number)) return false;
  uint64_t multiplier = 1;
  if (rest.empty()) {
    if (number.scale != 1) return false;  // "1.5" without a unit is not a whole number of bytes
  } else {
    if (rest.front() == ' ') rest.remove_prefix(1);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits)
      if (rest == u.suffix) unit = &u;
    if (!unit) return false;
    multiplier = unit->bytes;
  }
  detail::U128 total = 0;
  if (!detail::scale_to_int64(number, multiplier, total)) return false;
  bytes = static_cast<uint64_t>(total);
  return true;
}

}  // namespace ingestd::config
