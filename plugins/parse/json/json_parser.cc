#include "json_parser.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ingestd::plugins {

namespace ondemand = simdjson::ondemand;
using simdjson::error_code;

// Records are parsed in place: the padded_string_view below promises simdjson SIMDJSON_PADDING
// readable bytes after each record, which every batch buffer guarantees (Batch contract).
static_assert(Batch::kPadding >= simdjson::SIMDJSON_PADDING);

namespace {

constexpr int64_t kReportIntervalNs = 10'000'000'000;
// Arrays and objects kept as raw JSON are still validated by a recursive walk; this bounds it,
// well inside a worker thread's stack even in sanitizer builds, whose frames are several times
// larger. Deeper records are errors (DEPTH_ERROR).
constexpr int kMaxNesting = 128;

// One compare for the common case, any byte above ' '.
bool is_space(char c) {
  constexpr uint64_t kSpaces =
      (uint64_t{1} << ' ') | (uint64_t{1} << '\t') | (uint64_t{1} << '\n') | (uint64_t{1} << '\r');
  const auto u = static_cast<unsigned char>(c);
  return u <= ' ' && ((kSpaces >> u) & 1) != 0;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Strings are mostly short: a loop by hand beats a call to memchr.
bool has_backslash(std::string_view s) {
  if (s.size() > 64) return std::memchr(s.data(), '\\', s.size()) != nullptr;
  for (char c : s)
    if (c == '\\') return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return trim_right(s);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t first = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    return i > first;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). Also accepted: 't' or ' ' as the separator,
// 'z', and offsets without the colon. Digits of the fraction beyond nanoseconds are ignored.
bool parse_rfc3339(std::string_view s, int64_t& ns) {
  size_t pos = 0;
  auto number = [&](size_t width, int& out) {
    if (s.size() - pos < width) return false;
    out = 0;
    for (size_t end = pos + width; pos < end; ++pos) {
      if (!is_digit(s[pos])) return false;
      out = out * 10 + (s[pos] - '0');
    }
    return true;
  };
  auto literal = [&](char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!number(4, year) || !literal('-') || !number(2, month) || !literal('-') || !number(2, day))
    return false;
  if (!literal('T') && !literal('t') && !literal(' ')) return false;
  if (!number(2, hour) || !literal(':') || !number(2, minute) || !literal(':') ||
      !number(2, second))
    return false;
  int64_t fraction_ns = 0;
  if (literal('.')) {
    size_t first = pos;
    for (int64_t scale = 100'000'000; pos < s.size() && is_digit(s[pos]); ++pos, scale /= 10)
      fraction_ns += (s[pos] - '0') * scale;
    if (pos == first) return false;
  }
  int64_t offset_s = 0;
  if (!literal('Z') && !literal('z')) {
    if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) return false;
    int64_t sign = s[pos++] == '-' ? -1 : 1;
    int offset_hours, offset_minutes;
    if (!number(2, offset_hours)) return false;
    literal(':');
    if (!number(2, offset_minutes) || offset_hours > 23 || offset_minutes > 59) return false;
    offset_s = sign * (offset_hours * 3600 + offset_minutes * 60);
  }
  if (pos != s.size() || hour > 23 || minute > 59 || second > 60) return false;

  using namespace std::chrono;
  year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                      std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return false;
  int64_t seconds = int64_t{sys_days{date}.time_since_epoch().count()} * 86'400 + hour * 3'600 +
                    minute * 60 + second - offset_s;
  return !__builtin_mul_overflow(seconds, int64_t{1'000'000'000}, &ns) &&
         !__builtin_add_overflow(ns, fraction_ns, &ns);
}

bool scale_to_ns(int64_t value, int64_t scale, int64_t& ns) {
  return !__builtin_mul_overflow(value, scale, &ns);
}

// The whole and the fractional part are scaled separately, so that e.g. 1515445354624.25 ms is
// exact to the nanosecond instead of to the 256 ns a double holds at that magnitude.
bool scale_to_ns(double value, int64_t scale, int64_t& ns) {
  double whole = std::trunc(value);
  // 2^63 is exactly representable; the range check also rejects NaN and infinities.
  if (!(whole >= -9223372036854775808.0 && whole < 9223372036854775808.0)) return false;
  int64_t fraction = std::llround((value - whole) * static_cast<double>(scale));
  return scale_to_ns(static_cast<int64_t>(whole), scale, ns) &&
         !__builtin_add_overflow(ns, fraction, &ns);
}

}  // namespace

// Walks one JSON document with simdjson's on-demand API and appends its fields to an event.
// Every value is visited, so malformed JSON anywhere in the record is detected.
class JsonParser::Document {
 public:
  // `wanted`: the dotted paths to keep (see the `fields` option); empty keeps every field.
  Document(int max_depth, std::vector<std::string> wanted)
      : max_depth_(max_depth), wanted_(std::move(wanted)) {
    // What a top-level key is wanted for, by its length: a path whole (a key may hold dots
    // itself), and each of its beginnings that ends before a dot (for what is nested below).
    auto note = [&](std::string_view key, Want w) {
      if (key.size() >= top_level_.size()) {
        long_paths_ = true;
        return;
      }
      auto& bucket = top_level_[key.size()];
      auto it =
          std::find_if(bucket.begin(), bucket.end(), [&](const auto& e) { return e.first == key; });
      if (it == bucket.end())
        bucket.emplace_back(key, w);
      else if (w == Want::kAll)
        it->second = w;
    };
    for (const std::string& path : wanted_) {
      for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1))
        note(std::string_view(path).substr(0, dot), Want::kBelow);
      note(path, Want::kAll);
    }
  }

  // Adds the fields of the JSON object `json` (which lies in a buffer of the batch) to `event`.
  // Returns false with `reason` set when `json` is not a valid JSON object; fields added before
  // the error stay on the event, which the caller drops.
  bool parse(Batch& batch, Event& event, std::string_view json, std::string& reason) {
    batch_ = &batch;
    event_ = &event;
    end_ = json.data() + json.size();
    error_at_ = nullptr;
    // Safe without a copy: `json` lies in a batch buffer (arena or kept-alive), followed by
    // Batch::kPadding >= SIMDJSON_PADDING readable bytes (more when `json` is a slice of a longer
    // buffer). simdjson reads them, never writes them.
    ondemand::document doc;
    error_code error = parser_
                           .iterate(simdjson::padded_string_view(
                               json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING))
                           .get(doc);
    ondemand::json_type type{};
    if (!error) error = doc.type().get(type);
    if (!error && type != ondemand::json_type::object) {
      reason = fmt::format("not a JSON object (top-level {})", type_name(type));
      return false;
    }
    ondemand::object object;
    if (!error) error = doc.get_object().get(object);
    size_t seen = 0;
    if (!error) error = add_object(object, {}, 1, wanted_.empty(), seen);
    if (!error && doc.current_location().error() != simdjson::OUT_OF_BOUNDS)
      error = simdjson::TRAILING_CONTENT;
    if (error) {
      if (error_at_ >= json.data() && error_at_ < end_)
        reason = fmt::format("invalid JSON at byte {}: {}", error_at_ - json.data(),
                             simdjson::error_message(error));
      else
        reason = fmt::format("invalid JSON: {}", simdjson::error_message(error));
      return false;
    }
    return true;
  }

  // Document streams. Records that lie one after the other in one buffer, with only whitespace
  // between them (the lines of a file chunk), are parsed as one simdjson document stream: one
  // stage-1 pass over all of them instead of one per record (iterate_many, simdjson's fastest way
  // through NDJSON). Each document the stream yields is checked to be exactly its record, so a
  // torn or malformed record (which makes the stream's idea of where documents begin
  // unreliable) or two documents on one line never pass for something else: the caller then
  // parses that record alone, which decides and explains, and stops streaming.

  // Starts a stream over texts[from] and the records after it that lie right behind it (empty
  // texts, skipped records, in between are fine). Returns one past the last record of the
  // stream, or `from` when fewer than two records lie together.
  size_t start_stream(std::span<const std::string_view> texts, size_t from) {
    const std::string_view first = texts[from];
    const char* end = first.data() + first.size();
    size_t last = from, records = 1;
    for (size_t i = from + 1; i < texts.size(); ++i) {
      const std::string_view t = texts[i];
      if (t.empty()) continue;
      if (!follows(end, t.data()) ||
          static_cast<size_t>(t.data() + t.size() - first.data()) > kMaxStreamBytes)
        break;
      end = t.data() + t.size();
      last = i;
      ++records;
    }
    if (records < 2) return from;
    const size_t size = static_cast<size_t>(end - first.data());
    // One window (batch_size >= size), so the stream never needs a second stage-1 pass or the
    // thread simdjson would start for one; the capacity only grows, so the parser allocates
    // once (simdjson reallocates whenever it changes).
    while (stream_capacity_ < size) stream_capacity_ *= 2;
    stream_parser_.threaded = false;
    // Safe without a copy: the last record is followed by its buffer's Batch::kPadding bytes.
    if (stream_parser_.iterate_many(first.data(), size, stream_capacity_).get(stream_)) return from;
    stream_base_ = first.data();
    next_ = stream_.begin();
    return last + 1;
  }

  // Adds the fields of the stream's next document to `event` when that document is exactly
  // `json`, the record's text, and a valid object whose end is followed by `next`, the next
  // record of the stream. False otherwise, with fields of the event possibly added: the caller
  // drops them and parses `json` alone. The last record of a stream is always parsed alone: a
  // stream checks nothing after its last document (neither bytes that are not UTF-8 nor the
  // start of another document).
  bool parse_streamed(Batch& batch, Event& event, std::string_view json, const char* next) {
    ondemand::document_reference doc;
    if (!(next_ != stream_.end()) || (*next_).get(doc) ||
        stream_base_ + next_.current_index() != json.data())
      return false;
    batch_ = &batch;
    event_ = &event;
    end_ = json.data() + json.size();
    error_at_ = nullptr;
    ondemand::object object;
    size_t seen = 0;
    if (doc.get_object().get(object) || add_object(object, {}, 1, wanted_.empty(), seen))
      return false;
    // Where the document ended: at the next record's first byte. A document that took in part
    // of the next line, or left part of its own, ends elsewhere.
    auto after = doc.current_location();
    if (after.error() || after.value_unsafe() != next) return false;
    ++next_;
    return true;
  }

  // The flat reader. Most records are one object of strings without escapes, small integers,
  // floating-point numbers, booleans and nulls, with perhaps arrays and objects that are kept
  // whole or not kept at all; this reads those in a single pass by hand, validating as it goes,
  // at a fraction of the cost of simdjson's two stages. Anything else (an object to flatten
  // into dotted keys, an escape, a number simdjson reads differently, malformed JSON) makes it
  // decline: it returns false, with fields of the event possibly added (the caller drops them),
  // and the record goes the simdjson way, which decides and explains. What it accepts it reads
  // to exactly the fields the simdjson walk makes (the JSON fuzz target checks that on every
  // input).
  bool parse_flat(Batch& batch, Event& event, std::string_view json) {
    const char* p = json.data();
    const char* const end = p + json.size();
    if (p == end || *p != '{') return false;
    skip_space(++p, end);
    if (p != end && *p == '}') return p + 1 == end;
    const bool all = wanted_.empty();
    for (size_t k = 0;; ++k) {
      if (p == end || *p != '"') return false;
      ++p;
      // Records of one stream mostly have the same keys in the same order: the key at this
      // position in the last record, with its closing quote, is tried first. It was validated
      // when it was read, so the same bytes are valid here too.
      std::string_view key;
      Want w;
      KnownKey* known = k < known_keys_.size() ? &known_keys_[k] : nullptr;
      if (known && known->size > 0 && end - p > known->size &&
          same_text({p, known->size + 1u}, {known->text.data(), known->size + 1u})) {
        key = {p, known->size};
        w = known->want;
        p += known->size + 1;
      } else {
        if (!flat_string(p, end, key)) return false;
        w = all ? Want::kAll : want({}, key);
        if (known && key.size() < known->text.size()) {
          known->size = static_cast<uint8_t>(key.size());
          std::memcpy(known->text.data(), key.data(), key.size());
          known->text[key.size()] = '"';
          known->want = w;
        }
      }
      skip_space(p, end);
      if (p == end || *p != ':') return false;
      skip_space(++p, end);
      if (p != end && (*p == '{' || *p == '[')) {
        // An object the walk flattens into dotted keys is the walk's; an array, or an object
        // kept whole (max_depth 1) or not kept at all (`fields`), is read here, kept as its
        // JSON text when wanted.
        if (*p == '{' && w != Want::kNo && max_depth_ > 1) return false;
        const char* const start = p;
        if (!flat_container(p, end)) return false;
        if (w == Want::kAll)
          batch.append_field(event, key) = Value::raw({start, static_cast<size_t>(p - start)});
      } else {
        // Wanted only for what it would nest (kBelow), a scalar is read but not kept.
        Value unused;
        if (!flat_value(p, end, w == Want::kAll ? batch.append_field(event, key) : unused))
          return false;
      }
      skip_space(p, end);
      if (p == end) return false;
      if (*p == '}') return p + 1 == end;
      if (*p != ',') return false;
      skip_space(++p, end);
    }
  }

 private:
  static constexpr size_t kMaxStreamBytes = 4 << 20;

  static void skip_space(const char*& p, const char* end) {
    while (p != end && is_space(*p)) ++p;
  }

  // An array or object at `p` (its '[' or '{'), with values and keys the flat reader reads (so
  // no escapes, no numbers simdjson reads its own way), nested at most kMaxNesting levels as the
  // walk allows; `p` ends past it. Iterative: `closers` holds what closes each open level.
  static bool flat_container(const char*& p, const char* end) {
    std::array<char, kMaxNesting> closers;
    size_t depth = 0;
    Value unused;
    for (;;) {
      // At a value, `p` before `end`.
      if (*p == '{' || *p == '[') {
        if (depth == closers.size()) return false;
        const bool object = *p == '{';
        closers[depth++] = object ? '}' : ']';
        skip_space(++p, end);
        if (p == end) return false;
        if (*p != closers[depth - 1]) {
          if (object && !flat_member_key(p, end)) return false;
          continue;
        }
        ++p;  // empty
        --depth;
      } else if (!flat_value(p, end, unused)) {
        return false;
      }
      // Past a value: close levels until one goes on with another value.
      for (;;) {
        if (depth == 0) return true;
        skip_space(p, end);
        if (p == end) return false;
        if (*p == closers[depth - 1]) {
          ++p;
          --depth;
          continue;
        }
        if (*p != ',') return false;
        skip_space(++p, end);
        if (p == end) return false;
        if (closers[depth - 1] == '}' && !flat_member_key(p, end)) return false;
        break;
      }
    }
  }

  // A member's key and its colon at `p`; `p` ends at the value, before `end`.
  static bool flat_member_key(const char*& p, const char* end) {
    std::string_view key;
    if (*p != '"' || !flat_string(++p, end, key)) return false;
    skip_space(p, end);
    if (p == end || *p != ':') return false;
    skip_space(++p, end);
    return p != end;
  }

  // A string without escapes or control characters, in valid UTF-8, from `p` (just after its
  // opening quote) to its closing quote; `p` ends past that quote. Reads up to 15 bytes past the
  // record's end: within the padding that follows every record's buffer (Batch contract).
  static bool flat_string(const char*& p, const char* end, std::string_view& out) {
    const char* const first = p;
    while (p < end) {
      // In the next 16 bytes: where the first quote is, and where the first backslash, control
      // character or byte outside ASCII is (16 when there is none). One compare of each kind
      // for all 16, so that the loop's branches do not depend on the string's length.
      const auto [quote, other] = first_quote_and_other(p);
      if (quote < other) {
        p += quote;
        if (p >= end) return false;
        out = {first, static_cast<size_t>(p - first)};
        ++p;
        return true;
      }
      if (other == 16) {
        p += 16;
        continue;
      }
      p += other;
      if (p >= end) return false;
      // Not a backslash or a control character: the start of a UTF-8 sequence.
      if (static_cast<unsigned char>(*p) < 0x80 || !utf8_sequence(p, end)) return false;
    }
    return false;
  }

  static std::pair<unsigned, unsigned> first_quote_and_other(const char* p) {
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const unsigned quotes =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"'))));
    // A signed compare: bytes from 0x80 up are negative, so "less than 0x20" takes them too.
    const unsigned others = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(
        _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')), _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)))));
    // Bit 16 stands for "none in these 16 bytes".
    return {static_cast<unsigned>(__builtin_ctz(quotes | 0x10000)),
            static_cast<unsigned>(__builtin_ctz(others | 0x10000))};
#else
    unsigned quote = 16, other = 16;
    for (unsigned i = 16; i-- > 0;) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c == '"') quote = i;
      if (c == '\\' || c < 0x20 || c >= 0x80) other = i;
    }
    return {quote, other};
#endif
  }

  // One UTF-8 sequence of two to four bytes at `p` (whose first byte is not ASCII): no overlong
  // forms, no surrogates, nothing above U+10FFFF. `p` ends past it.
  static bool utf8_sequence(const char*& p, const char* end) {
    const auto byte = [&](ptrdiff_t i) { return static_cast<unsigned char>(p[i]); };
    const unsigned char c = byte(0);
    int length;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // overlong
      if (c == 0xED) high = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // overlong
      if (c == 0xF4) high = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (end - p < length || byte(1) < low || byte(1) > high) return false;
    for (int i = 2; i < length; ++i)
      if ((byte(i) & 0xC0) != 0x80) return false;
    p += length;
    return true;
  }

  // A scalar value at `p`; `p` ends past it, never past `end`. The caller checks what follows.
  static bool flat_value(const char*& p, const char* end, Value& out) {
    if (p == end) return false;  // whatever lies after the record is not its value
    auto literal = [&](std::string_view word) {
      if (static_cast<size_t>(end - p) < word.size() || !same_text({p, word.size()}, word))
        return false;
      p += word.size();
      return true;
    };
    switch (*p) {
      case '"': {
        std::string_view s;
        if (!flat_string(++p, end, s)) return false;
        out = Value::string(s);
        return true;
      }
      case 't':
        if (!literal("true")) return false;
        out = Value::boolean(true);
        return true;
      case 'f':
        if (!literal("false")) return false;
        out = Value::boolean(false);
        return true;
      case 'n':
        if (!literal("null")) return false;
        out = Value::null();
        return true;
      default:
        return flat_number(p, end, out);
    }
  }

  // A JSON number. Integers of up to 18 digits are read here (they always fit an int64), as are
  // numbers with a fraction or an exponent within a double's range (std::from_chars, correctly
  // rounded, as read_number reads them). -0, longer integers and numbers out of a double's range
  // decline: simdjson has its own answer for each.
  static bool flat_number(const char*& p, const char* end, Value& out) {
    const char* const first = p;
    const bool negative = *p == '-';
    if (negative) ++p;
    int64_t whole = 0;  // of the first 18 digits: more could overflow
    size_t count = 0;   // digits of the whole part
    if (p != end && *p == '0') {
      ++p;
      count = 1;
    } else {
      // Eight bytes at a time: how many of them are digits, and their value.
      for (;;) {
        uint64_t value;
        const size_t n = digit_run(p, &value);
        // Digits up to the record's end: whatever this is, it is not a member of an object.
        if (static_cast<ptrdiff_t>(n) >= end - p) return false;
        if (count + n <= 18) whole = whole * kPowersOf10[n] + static_cast<int64_t>(value);
        count += n;
        p += n;
        if (n < 8) break;
      }
      if (count == 0) return false;
    }
    const bool short_integer = count <= 18;
    bool fraction = false;
    auto more_digits = [&] {
      size_t n, all = 0;
      do {
        n = digit_run(p, nullptr);
        if (static_cast<ptrdiff_t>(n) >= end - p) return false;
        p += n;
        all += n;
      } while (n == 8);
      return all > 0;
    };
    if (p != end && *p == '.') {
      ++p;
      if (!more_digits()) return false;
      fraction = true;
    }
    if (p != end && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p != end && (*p == '+' || *p == '-')) ++p;
      if (!more_digits()) return false;
      fraction = true;
    }
    if (!fraction) {
      if (!short_integer || (negative && whole == 0)) return false;  // long, or -0
      out = Value::integer(negative ? -whole : whole);
      return true;
    }
    double d;
    auto [next, ec] = std::from_chars(first, p, d);
    if (ec != std::errc() || next != p || !std::isfinite(d)) return false;
    out = Value::number(d);
    return true;
  }

  static constexpr int64_t kPowersOf10[] = {1,       10,        100,        1'000,      10'000,
                                            100'000, 1'000'000, 10'000'000, 100'000'000};

  // How many of the 8 bytes at `p` (0 to 8) are ASCII digits before the first that is not, and
  // (`value` not null) the number they make; no branch per digit. Reads 8 bytes: `p` lies in a
  // record, followed by its buffer's padding.
  static size_t digit_run(const char* p, uint64_t* value) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    if constexpr (std::endian::native != std::endian::little) x = __builtin_bswap64(x);
    // A digit becomes its value, 0 to 9; any other byte something else. Then a byte's high bit
    // is set when it is 10 or more (on the low 7 bits, so that no sum carries into the next
    // byte, or-ed with the byte's own high bit).
    const uint64_t d = x ^ 0x3030303030303030;
    const uint64_t others =
        (((d & 0x7F7F7F7F7F7F7F7F) + 0x7676767676767676) | d) & 0x8080808080808080;
    const size_t n = others ? static_cast<size_t>(__builtin_ctzll(others)) / 8 : 8;
    if (value) *value = 0;
    if (value && n > 0) {
      // The n digits to the top bytes, zeros (leading zeros of the number) below them; then
      // pairs, fours and the eight combined, the first digit the most significant.
      uint64_t v = d << (8 * (8 - n));
      v = v * 10 + (v >> 8);
      v = (((v & 0x000000FF000000FF) * (100 + (1'000'000ULL << 32))) +
           (((v >> 16) & 0x000000FF000000FF) * (1 + (10'000ULL << 32)))) >>
          32;
      *value = v & 0xFFFFFFFF;
    }
    return n;
  }

  // True when `b` starts after `a_end` with only whitespace (at most 64 bytes: within the
  // padding that follows every record's buffer, so reading them is safe) in between.
  static bool follows(const char* a_end, const char* b) {
    if (b < a_end || b - a_end > static_cast<ptrdiff_t>(Batch::kPadding)) return false;
    for (const char* p = a_end; p < b; ++p)
      if (!is_space(*p)) return false;
    return true;
  }

  static const char* type_name(ondemand::json_type type) {
    switch (type) {
      case ondemand::json_type::array:
        return "array";
      case ondemand::json_type::object:
        return "object";
      case ondemand::json_type::number:
        return "number";
      case ondemand::json_type::string:
        return "string";
      case ondemand::json_type::boolean:
        return "boolean";
      case ondemand::json_type::null:
        return "null";
    }
    return "value";
  }

  // Which of an object's members the `fields` option wants.
  enum class Want { kNo, kAll, kBelow };  // kBelow: only some of what is nested in it

  Want want(std::string_view prefix, std::string_view key) const {
    if (prefix.empty() && key.size() < top_level_.size() && !long_paths_) {
      for (const auto& [first, w] : top_level_[key.size()])
        if (same_text(first, key)) return w;
      return Want::kNo;
    }
    Want found = Want::kNo;
    for (std::string_view rest : wanted_) {
      if (!prefix.empty()) {
        if (rest.size() <= prefix.size() || rest[prefix.size()] != '.' || !rest.starts_with(prefix))
          continue;
        rest.remove_prefix(prefix.size() + 1);
      }
      // Lengths first: most paths differ from the key in length, and comparing them is free.
      if (rest.size() == key.size()) {
        if (same_text(rest, key)) return Want::kAll;
      } else if (rest.size() > key.size() && rest[key.size()] == '.' && rest.starts_with(key)) {
        found = Want::kBelow;
      }
    }
    return found;
  }

  // Adds the members of an object at `depth` (1 for the top level), their keys below `prefix`:
  // all of them, or (all == false) those the `fields` option wants. The others are read only to
  // validate them.
  error_code add_object(ondemand::object object, std::string_view prefix, int depth, bool all,
                        size_t& seen) {
    for (auto member : object) {
      // Used in place: a copy of the field out of its result stalls on the store it was built by.
      if (error_code e = member.error()) return e;
      ondemand::field& field = member.value_unsafe();
      ++seen;
      std::string_view key;
      if (error_code e = read_key(field, true, key)) return e;
      const Want w = all ? Want::kAll : want(prefix, key);
      if (w == Want::kNo) {
        if (error_code e = skip_value(field.value())) return e;
        continue;
      }
      if (depth > 1) key = dotted(prefix, key);
      if (error_code e = add_value(key, field.value(), depth, w == Want::kAll)) return e;
    }
    return simdjson::SUCCESS;
  }

  error_code skip_value(ondemand::value& value) {
    ondemand::json_type type;
    if (error_code e = value.type().get(type)) return e;
    Value unused;
    return read_value(value, type, false, 0, unused);
  }

  // `value` by reference, like the field above: a copy stalls the same way.
  error_code add_value(std::string_view key, ondemand::value& value, int depth, bool all) {
    ondemand::json_type type;
    if (error_code e = value.type().get(type)) return e;
    if (type == ondemand::json_type::object && depth < max_depth_) {
      ondemand::object object;
      if (error_code e = value.get_object().get(object)) return e;
      size_t seen = 0;
      if (error_code e = add_object(object, key, depth + 1, all, seen)) return e;
      // An empty object leaves no dotted key behind; keep it visible as the raw value {}.
      if (seen == 0) batch_->append_field(*event_, key, Value::raw(batch_->copy_unpadded("{}")));
      return simdjson::SUCCESS;
    }
    // Wanted only for what it would nest, but not an object (or too deep to flatten): not kept.
    if (!all) {
      Value unused;
      return read_value(value, type, false, 0, unused);
    }
    // A repeated key is kept as it came: lookups (Batch::find) see the first occurrence, and
    // checking for repeats here would cost a scan per field.
    // Read straight into the field: a copy of a Value just written stalls as the fields above.
    // On an error the field stays behind, on an event that is then dropped.
    return read_value(value, type, true, 0, batch_->append_field(*event_, key));
  }

  // Reads (and so validates) one value; arrays and objects become their raw JSON text. With
  // keep == false nothing is written to the arena and `out` is left unset.
  error_code read_value(ondemand::value& value, ondemand::json_type type, bool keep, int nesting,
                        Value& out) {
    error_code e = read_value_unchecked(value, type, keep, nesting, out);
    if (e && !error_at_) error_at_ = value.raw_json_token().data();  // the innermost failing value
    return e;
  }

  error_code read_value_unchecked(ondemand::value& value, ondemand::json_type type, bool keep,
                                  int nesting, Value& out) {
    switch (type) {
      case ondemand::json_type::array:
      case ondemand::json_type::object: {
        if (!keep) return validate_container(value, type, nesting);
        const char* start = value.raw_json_token().data();
        if (error_code e = validate_container(value, type, nesting)) return e;
        const char* end;
        if (error_code e = value.current_location().get(end)) return e;
        out = Value::raw(trim_right({start, static_cast<size_t>(end - start)}));
        return simdjson::SUCCESS;
      }
      case ondemand::json_type::string: {
        std::string_view s;
        if (error_code e = read_string(value, keep, s)) return e;
        out = Value::string(s);
        return simdjson::SUCCESS;
      }
      case ondemand::json_type::number:
        return read_number(value, out);
      case ondemand::json_type::boolean: {
        bool b;
        if (value.get_bool().get(b))
          return value.raw_json_token().starts_with('t') ? simdjson::T_ATOM_ERROR
                                                         : simdjson::F_ATOM_ERROR;
        out = Value::boolean(b);
        return simdjson::SUCCESS;
      }
      case ondemand::json_type::null: {
        bool is_null = false;
        if (value.is_null().get(is_null) || !is_null) return simdjson::N_ATOM_ERROR;
        out = Value::null();
        return simdjson::SUCCESS;
      }
    }
    return simdjson::INCORRECT_TYPE;
  }

  error_code validate_container(ondemand::value& value, ondemand::json_type type, int nesting) {
    if (nesting >= kMaxNesting) return simdjson::DEPTH_ERROR;
    Value unused;
    if (type == ondemand::json_type::array) {
      ondemand::array array;
      if (error_code e = value.get_array().get(array)) return e;
      for (auto element : array) {
        ondemand::value child;
        ondemand::json_type child_type;
        if (error_code e = std::move(element).get(child)) return e;
        if (error_code e = child.type().get(child_type)) return e;
        if (error_code e = read_value(child, child_type, false, nesting + 1, unused)) return e;
      }
      return simdjson::SUCCESS;
    }
    ondemand::object object;
    if (error_code e = value.get_object().get(object)) return e;
    for (auto member : object) {
      std::string_view key;
      ondemand::json_type child_type;
      if (error_code e = member.error()) return e;
      ondemand::field& field = member.value_unsafe();
      if (error_code e = read_key(field, false, key)) return e;
      if (error_code e = field.value().type().get(child_type)) return e;
      if (error_code e = read_value(field.value(), child_type, false, nesting + 1, unused))
        return e;
    }
    return simdjson::SUCCESS;
  }

  // A key without escapes is a view into the record; one with escapes is unescaped (and, with
  // keep, copied into the arena).
  error_code read_key(ondemand::field& field, bool keep, std::string_view& key) {
    // Keys are short: one pass by hand beats two calls to memchr. A '"' ends the key unless a
    // backslash came first (then simdjson unescapes it).
    const char* p = field.key().raw();
    const char* q = p;
    while (q < end_ && *q != '"' && *q != '\\') ++q;
    if (q == end_) return simdjson::STRING_ERROR;
    if (*q == '"') {
      key = {p, static_cast<size_t>(q - p)};
      return simdjson::SUCCESS;
    }
    std::string_view unescaped;
    if (error_code e = field.unescaped_key().get(unescaped)) return e;
    key = keep ? batch_->copy_unpadded(unescaped) : unescaped;
    return simdjson::SUCCESS;
  }

  // Like read_key, for a string value.
  error_code read_string(ondemand::value& value, bool keep, std::string_view& out) {
    std::string_view token = trim_right(value.raw_json_token());
    if (token.size() < 2) return simdjson::STRING_ERROR;
    std::string_view inner = token.substr(1, token.size() - 2);
    if (!has_backslash(inner)) {
      out = inner;
      return simdjson::SUCCESS;
    }
    std::string_view unescaped;
    if (error_code e = value.get_string().get(unescaped)) return e;
    out = keep ? batch_->copy_unpadded(unescaped) : unescaped;
    return simdjson::SUCCESS;
  }

  error_code read_number(ondemand::value& value, Value& out) {
    ondemand::number number;
    if (!value.get_number().get(number)) {
      switch (number.get_number_type()) {
        case ondemand::number_type::signed_integer:
          out = Value::integer(number.get_int64());
          return simdjson::SUCCESS;
        case ondemand::number_type::unsigned_integer:
          out = Value::number(static_cast<double>(number.get_uint64()));
          return simdjson::SUCCESS;
        case ondemand::number_type::floating_point_number:
          // Read from the text below: simdjson 3.0 makes 0, or a wrong value, of a number with
          // more than 19 significant digits (simdjson#2099).
          break;
      }
    }
    // Floating-point numbers, and valid JSON that simdjson's number parser refuses: integers
    // beyond 64 bits (read as a double) and numbers beyond the range of a double (kept as their
    // text). std::from_chars rounds correctly, as the flat reader's numbers are read too.
    std::string_view token = trim_right(value.raw_json_token());
    if (!is_json_number(token)) return simdjson::NUMBER_ERROR;
    double d;
    auto [next, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
    if (ec == std::errc() && next == token.data() + token.size()) {
      out = Value::number(d);
      return simdjson::SUCCESS;
    }
    // Out of range: simdjson's answer, 0 below a double's range and an error above.
    out = value.get_double().get(d) ? Value::raw(token) : Value::number(d);
    return simdjson::SUCCESS;
  }

  std::string_view dotted(std::string_view prefix, std::string_view key) {
    char* p = batch_->allocate_unpadded(prefix.size() + 1 + key.size());
    std::memcpy(p, prefix.data(), prefix.size());
    p[prefix.size()] = '.';
    if (!key.empty()) std::memcpy(p + prefix.size() + 1, key.data(), key.size());
    return {p, prefix.size() + 1 + key.size()};
  }

  int max_depth_;
  std::vector<std::string> wanted_;
  // Top-level keys shorter than 64 bytes: by length, the first segments of the wanted paths
  // (views into wanted_) with what each is wanted for. long_paths_: a longer one exists, so
  // want() takes the general way.
  std::array<std::vector<std::pair<std::string_view, Want>>, 64> top_level_;
  bool long_paths_ = false;
  // The flat reader's keys by position in the last record it read: up to 15 bytes each, followed
  // by the closing quote (size 0: none known).
  struct KnownKey {
    std::array<char, 16> text{};
    uint8_t size = 0;
    Want want = Want::kNo;
  };
  std::array<KnownKey, 16> known_keys_;
  ondemand::parser parser_;
  ondemand::parser stream_parser_;  // for document streams; parser_ takes single records
  ondemand::document_stream stream_;
  ondemand::document_stream::iterator next_;
  const char* stream_base_ = nullptr;  // the first byte of the stream
  size_t stream_capacity_ = 64 << 10;
  Batch* batch_ = nullptr;
  Event* event_ = nullptr;
  const char* end_ = nullptr;       // end of the current record
  const char* error_at_ = nullptr;  // where reading a value failed, for the dead-letter reason
};

JsonParser::JsonParser(const Options& options, Diagnostics& diag, bool flat_reader)
    : flat_reader_(flat_reader),
      strip_prefix_(options.get_string("strip_prefix")),
      dead_letter_(options.get_string("on_error", "drop") == "dead_letter"),
      reject_dead_letter_(options.get_string("on_reject", "drop") == "dead_letter"),
      time_field_(options.get_string("time_field")),
      max_depth_(static_cast<int>(options.get_int("max_depth", 8))),
      sanitizer_(options.get_object("sanitize"), diag) {
  std::string format = options.get_string("time_format", "ms");
  if (format == "s") {
    time_format_ = TimeFormat::kSeconds;
  } else if (format == "ms") {
    time_format_ = TimeFormat::kMillis;
  } else if (format == "us") {
    time_format_ = TimeFormat::kMicros;
  } else if (format == "ns") {
    time_format_ = TimeFormat::kNanos;
  } else if (format == "rfc3339") {
    time_format_ = TimeFormat::kRfc3339;
  } else {
    diag.error("time_format", fmt::format("unknown time format '{}'", format));
  }
  if (max_depth_ < 1 || max_depth_ > 64) diag.error("max_depth", "must be between 1 and 64");
  std::vector<std::string> wanted = options.get_list("fields");
  if (!wanted.empty()) {
    // What the parser itself reads is always kept.
    if (!time_field_.empty()) wanted.push_back(time_field_);
    for (std::string_view field : sanitizer_.fields()) wanted.emplace_back(field);
    for (const std::string& path : wanted)
      if (path.empty() || path.front() == '.' || path.back() == '.')
        diag.error("fields", fmt::format("'{}' is not a dotted field path", path));
  }
  document_ = std::make_unique<Document>(max_depth_, std::move(wanted));
}

JsonParser::~JsonParser() = default;

bool JsonParser::start(Context& ctx) {
  bind_counters(ctx);
  return true;
}

void JsonParser::bind_counters(Context& ctx) {
  parsed_ = &ctx.counter("parsed");
  errors_ = &ctx.counter("errors");
  skipped_ = &ctx.counter("skipped");
  time_missing_ = &ctx.counter("time_missing");
  rejected_ = &ctx.counter("rejected");
  streamed_ = &ctx.counter("streamed");
  flat_ = &ctx.counter("flat");
  sanitizer_.bind_counters(ctx);
}

void JsonParser::parse(Context& ctx, Batch& batch) {
  if (!parsed_) bind_counters(ctx);
  batch.reserve(batch.size(), batch.size() * fields_per_event_);
  std::span<Event> events = batch.events();
  size_t fields = 0;
  keep_.assign(events.size(), 0);
  uint64_t parsed = 0, errors = 0, skipped = 0, time_missing = 0, rejected = 0;
  uint64_t streamed_records = 0, flat_records = 0;
  std::string reason, last_reason;
  const bool sanitize = !sanitizer_.empty();
  // Each record's JSON text; empty for one that is skipped.
  texts_.resize(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    std::string_view text = events[i].raw;
    if (!strip_prefix_.empty()) {
      if (!text.starts_with(strip_prefix_)) {
        ++skipped;
        texts_[i] = {};
        continue;
      }
      text.remove_prefix(strip_prefix_.size());
    }
    text = trim(text);
    if (text.empty()) ++skipped;
    texts_[i] = text;
  }
  // Records are read by the flat reader while it takes them. A record it declines is parsed
  // alone; when that record is valid (nested, say), so are likely the rest: from the next record
  // on they are read from document streams. Records [i, stream_end) are read from a stream;
  // after one that the stream could not take, the rest of the batch is parsed record by record.
  bool flat = flat_reader_;
  size_t stream_end = 0;
  bool streaming = strip_prefix_.empty();
  for (size_t i = 0; i < events.size(); ++i) {
    Event& event = events[i];
    const std::string_view text = texts_[i];
    if (text.empty()) continue;
    // Fields a source attached: moved behind the current end so that the parsed ones can
    // follow them contiguously.
    auto attach = [&](const Event& from) {
      event.field_count = 0;
      for (uint32_t k = 0; k < from.field_count; ++k) {
        Field f = batch.fields(from)[k];
        batch.append_field(event, f.key, f.value);
      }
    };
    if (event.field_count > 0) attach(Event(event));
    const Event attached = event;
    // Drops what a reader that gave up added: the attached fields again at the end, then the
    // record's.
    auto drop_read_fields = [&] {
      event = attached;
      if (attached.field_count > 0) attach(attached);
    };
    bool read = false;
    if (flat) {
      read = document_->parse_flat(batch, event, text);
      if (read)
        ++flat_records;
      else
        drop_read_fields();
    } else {
      if (streaming && i >= stream_end) stream_end = document_->start_stream(texts_, i);
      const char* next = nullptr;  // the next record of the stream
      for (size_t k = i + 1; k < stream_end && !next; ++k)
        if (!texts_[k].empty()) next = texts_[k].data();
      // The last record of a stream is parsed alone (see parse_streamed).
      if (next) {
        read = document_->parse_streamed(batch, event, text, next);
        if (read) {
          ++streamed_records;
        } else {
          stream_end = 0;
          streaming = false;
          drop_read_fields();
        }
      }
    }
    if (!read) {
      if (!document_->parse(batch, event, text, reason)) {
        ++errors;
        if (dead_letter_ && !ctx.dead_letter(event.raw, reason))
          batch.resolve_acks(false);  // the record is lost, not set aside
        last_reason.swap(reason);
        continue;
      }
      flat = false;
    }
    Sanitizer::Outcome outcome =
        sanitize ? sanitizer_.apply(batch, event) : Sanitizer::Outcome::kKept;
    if (outcome == Sanitizer::Outcome::kKept) {
      event.raw = text;
    } else if (outcome == Sanitizer::Outcome::kChanged) {
      sanitizer_.encode_raw(batch, event);
    } else {
      ++rejected;
      // Set aside on purpose: its acks stand unless the dead letter is lost.
      if (reject_dead_letter_ && !ctx.dead_letter(event.raw, sanitizer_.reject_reason()))
        batch.resolve_acks(false);
      continue;
    }
    if (!time_field_.empty()) {
      int64_t ns;
      if (event_time(batch, event, ns)) {
        event.time_ns = ns;
      } else {
        event.time_ns = batch.ingest_time_ns;
        ++time_missing;
      }
    }
    keep_[i] = 1;
    ++parsed;
    fields += event.field_count;
  }
  if (parsed) fields_per_event_ = fields / parsed + 1;
  size_t index = 0;
  batch.retain([&](const Event&) { return keep_[index++] != 0; });

  if (parsed) parsed_->add(parsed);
  if (errors) errors_->add(errors);
  if (skipped) skipped_->add(skipped);
  if (time_missing) time_missing_->add(time_missing);
  if (rejected) rejected_->add(rejected);
  if (streamed_records) streamed_->add(streamed_records);
  if (flat_records) flat_->add(flat_records);
  if (sanitize) sanitizer_.flush();
  if (errors) report_errors(ctx, errors, last_reason);
}

bool JsonParser::event_time(const Batch& batch, const Event& event, int64_t& ns) const {
  const Value* v = batch.find(event, time_field_);
  if (!v) return false;
  int64_t scale = 1;
  switch (time_format_) {
    case TimeFormat::kRfc3339:
      return v->type == Value::Type::kString && parse_rfc3339(v->s, ns);
    case TimeFormat::kSeconds:
      scale = 1'000'000'000;
      break;
    case TimeFormat::kMillis:
      scale = 1'000'000;
      break;
    case TimeFormat::kMicros:
      scale = 1'000;
      break;
    case TimeFormat::kNanos:
      break;
  }
  switch (v->type) {
    case Value::Type::kInt:
      return scale_to_ns(v->i, scale, ns);
    case Value::Type::kDouble:
      return scale_to_ns(v->d, scale, ns);
    case Value::Type::kString: {
      const char* first = v->s.data();
      const char* last = first + v->s.size();
      int64_t i;
      if (auto r = std::from_chars(first, last, i); r.ec == std::errc() && r.ptr == last)
        return scale_to_ns(i, scale, ns);
      double d;
      if (auto r = std::from_chars(first, last, d); r.ec == std::errc() && r.ptr == last)
        return scale_to_ns(d, scale, ns);
      return false;
    }
    default:
      return false;
  }
}

void JsonParser::report_errors(Context& ctx, uint64_t errors, const std::string& last_reason) {
  unreported_errors_ += errors;
  int64_t now = ctx.clock().monotonic_ns();
  if (reported_ && now - last_report_ns_ < kReportIntervalNs) return;
  ctx.logf(LogLevel::kWarn, "{} record(s) could not be parsed since the last report; last: {}",
           unreported_errors_, last_reason);
  unreported_errors_ = 0;
  last_report_ns_ = now;
  reported_ = true;
}

}  // namespace ingestd::plugins
