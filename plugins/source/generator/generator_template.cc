#include "generator_template.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr int64_t kMaxHexDigits = 4096;
constexpr int kMaxDecimals = 17;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    size_t b = s.find_first_not_of(" \t", i);
    if (b == std::string_view::npos) break;
    size_t e = std::min(s.find_first_of(" \t", b), s.size());
    words.push_back(s.substr(b, e - b));
    i = e;
  }
  return words;
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

int decimals_of(std::string_view number) {
  size_t dot = number.find('.');
  if (dot == std::string_view::npos) return 0;
  size_t end = number.find_first_of("eE", dot);
  if (end == std::string_view::npos) end = number.size();
  return static_cast<int>(end - dot - 1);
}

template <class T>
void append_number(std::string& out, T value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace

GeneratorRng::GeneratorRng(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);
}

uint64_t GeneratorRng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

// Lemire's multiply-and-shift with rejection of the biased low products.
uint64_t GeneratorRng::below(uint64_t bound) {
  __extension__ using Wide = unsigned __int128;
  Wide m = static_cast<Wide>(next()) * bound;
  auto low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = -bound % bound;
    while (low < threshold) {
      m = static_cast<Wide>(next()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double GeneratorRng::unit() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

bool GeneratorTemplate::compile(std::string_view text, std::string& error) {
  parts_.clear();
  literal_size_ = 0;
  auto add_literal = [&](std::string_view s) {
    if (s.empty()) return;
    literal_size_ += s.size();
    if (!parts_.empty() && parts_.back().kind == PartKind::kLiteral)
      parts_.back().text += s;
    else
      parts_.push_back(Part{.text = std::string(s)});
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      add_literal(text.substr(pos));
      break;
    }
    add_literal(text.substr(pos, open - pos));
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      error = fmt::format("unterminated placeholder at offset {}: missing '}}}}'", open);
      return false;
    }
    Part part;
    if (!compile_placeholder(text.substr(open + 2, close - open - 2), part, error)) {
      error = fmt::format("placeholder at offset {}: {}", open, error);
      return false;
    }
    parts_.push_back(std::move(part));
    pos = close + 2;
  }
  return true;
}

bool GeneratorTemplate::compile_placeholder(std::string_view body, Part& part,
                                            std::string& error) const {
  body = trim(body);
  size_t name_end = std::min(body.find_first_of(" \t"), body.size());
  std::string_view name = body.substr(0, name_end);
  std::string_view args = trim(body.substr(name_end));
  std::vector<std::string_view> words = split_words(args);

  auto no_args = [&](PartKind kind) {
    if (!args.empty()) {
      error = fmt::format("'{}' takes no arguments", name);
      return false;
    }
    part.kind = kind;
    return true;
  };
  if (name == "seq") return no_args(PartKind::kSeq);
  if (name == "now_s") return no_args(PartKind::kNowS);
  if (name == "now_ms") return no_args(PartKind::kNowMs);
  if (name == "now_ns") return no_args(PartKind::kNowNs);
  if (name == "choice") {
    if (args.empty()) {
      error = "'choice' needs comma-separated values: {{choice a,b,c}}";
      return false;
    }
    part.kind = PartKind::kChoice;
    size_t start = 0;
    for (;;) {
      size_t comma = args.find(',', start);
      part.choices.emplace_back(trim(args.substr(start, comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return true;
  }
  if (name == "int") {
    part.kind = PartKind::kInt;
    if (words.size() != 2 || !parse_number(words[0], part.min) ||
        !parse_number(words[1], part.max) || part.min > part.max) {
      error = "'int' needs two integers MIN <= MAX: {{int 0 100}}";
      return false;
    }
    return true;
  }
  if (name == "float") {
    part.kind = PartKind::kFloat;
    if (words.size() != 2 || !parse_number(words[0], part.min_d) ||
        !parse_number(words[1], part.max_d) || !std::isfinite(part.min_d) ||
        !std::isfinite(part.max_d) || part.min_d > part.max_d) {
      error = "'float' needs two numbers MIN <= MAX: {{float 0.0 1.5}}";
      return false;
    }
    part.decimals = std::max(decimals_of(words[0]), decimals_of(words[1]));
    if (part.decimals == 0 && words[0].find_first_of(".eE") == std::string_view::npos &&
        words[1].find_first_of(".eE") == std::string_view::npos)
      part.decimals = 3;
    part.decimals = std::min(part.decimals, kMaxDecimals);
    return true;
  }
  if (name == "hex") {
    part.kind = PartKind::kHex;
    if (words.size() != 1 || !parse_number(words[0], part.max) || part.max < 1 ||
        part.max > kMaxHexDigits) {
      error = fmt::format("'hex' needs a digit count from 1 to {}: {{{{hex 16}}}}", kMaxHexDigits);
      return false;
    }
    return true;
  }
  if (name.empty())
    error = "empty placeholder '{{}}'";
  else
    error = fmt::format(
        "unknown placeholder '{}' (known: choice, int, float, hex, seq, now_s, now_ms, now_ns)",
        name);
  return false;
}

void GeneratorTemplate::render(std::string& out, GeneratorRng& rng, uint64_t seq,
                               int64_t now_ns) const {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const Part& part : parts_) {
    switch (part.kind) {
      case PartKind::kLiteral:
        out += part.text;
        break;
      case PartKind::kChoice:
        out += part.choices[rng.below(part.choices.size())];
        break;
      case PartKind::kInt: {
        const uint64_t span = static_cast<uint64_t>(part.max) - static_cast<uint64_t>(part.min) + 1;
        const uint64_t offset = span == 0 ? rng.next() : rng.below(span);
        append_number(out, static_cast<int64_t>(static_cast<uint64_t>(part.min) + offset));
        break;
      }
      case PartKind::kFloat: {
        double v = part.min_d + (part.max_d - part.min_d) * rng.unit();
        v = std::clamp(v, part.min_d, part.max_d);
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, part.decimals);
        if (r.ec != std::errc()) r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, r.ptr);
        break;
      }
      case PartKind::kHex: {
        uint64_t bits = 0;
        for (int64_t i = 0; i < part.max; ++i) {
          if (i % 16 == 0) bits = rng.next();
          out += kHex[bits & 15];
          bits >>= 4;
        }
        break;
      }
      case PartKind::kSeq:
        append_number(out, seq);
        break;
      case PartKind::kNowS:
        append_number(out, now_ns / 1'000'000'000);
        break;
      case PartKind::kNowMs:
        append_number(out, now_ns / 1'000'000);
        break;
      case PartKind::kNowNs:
        append_number(out, now_ns);
        break;
    }
  }
}

}  // namespace ingestd::plugins
