#include "sse_framer.h"

#include <cstring>
#include <limits>

namespace ingestd::plugins::sse {

namespace {

constexpr char kBom[] = "\xEF\xBB\xBF";
constexpr unsigned kBomSize = 3;

// The first `c` in [p, end), or end.
const char* find(const char* p, const char* end, char c) {
  const void* hit = std::memchr(p, c, static_cast<size_t>(end - p));
  return hit ? static_cast<const char*>(hit) : end;
}

// `value` as a retry time when it is all ASCII digits (saturating), else nullopt.
std::optional<uint64_t> parse_retry(std::string_view value) {
  if (value.empty()) return std::nullopt;
  uint64_t ms = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    ms = ms > (kMax - digit) / 10 ? kMax : ms * 10 + digit;
  }
  return ms;
}

}  // namespace

Framer::Framer(size_t max_event_size) : max_event_size_(max_event_size) {}

void Framer::set_last_event_id(std::string_view id) {
  last_id_ = id;
  id_ = id;
}

std::optional<uint64_t> Framer::take_retry_ms() {
  std::optional<uint64_t> retry = retry_ms_;
  retry_ms_.reset();
  return retry;
}

void Framer::feed(std::string_view bytes, Handler& handler) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  if (!bom_done_) {
    while (p < end && bom_matched_ < kBomSize && *p == kBom[bom_matched_]) ++bom_matched_, ++p;
    if (bom_matched_ < kBomSize && p == end) return;  // so far a prefix of the BOM
    bom_done_ = true;
    // A prefix of the BOM followed by something else was text after all.
    if (bom_matched_ < kBomSize && bom_matched_ > 0) consume(kBom, kBom + bom_matched_, handler);
  }
  consume(p, end, handler);
  materialize();  // views into this piece die with it
}

void Framer::consume(const char* p, const char* const end, Handler& handler) {
  if (cr_pending_ && p < end) {
    cr_pending_ = false;
    if (*p == '\n') ++p;
  }
  // The next LF and CR at or after p, each searched again only once passed: linear in the piece
  // whichever line ends it uses.
  const char* lf = nullptr;
  const char* cr = nullptr;
  while (p < end) {
    if (lf == nullptr || lf < p) lf = find(p, end, '\n');
    if (cr == nullptr || cr < p) cr = find(p, end, '\r');
    const char* eol = lf < cr ? lf : cr;
    if (eol == end) {  // the line goes on in the next piece
      const size_t n = static_cast<size_t>(end - p);
      if (!skipping_line_ && partial_.size() + n > max_event_size_) {
        partial_.clear();
        skipping_line_ = true;
        drop_event();
      }
      if (!skipping_line_) partial_.append(p, n);
      return;
    }
    const size_t n = static_cast<size_t>(eol - p);
    if (skipping_line_) {
      skipping_line_ = false;  // the oversized line ends here
    } else if (partial_.size() + n > max_event_size_) {
      partial_.clear();
      drop_event();
    } else if (!partial_.empty()) {
      partial_.append(p, n);
      line(partial_, false, handler);
      partial_.clear();
    } else {
      line(std::string_view(p, n), true, handler);
    }
    p = eol + 1;
    if (*eol == '\r') {
      if (p == end)
        cr_pending_ = true;
      else if (*p == '\n')
        ++p;
    }
  }
}

void Framer::line(std::string_view text, bool stable, Handler& handler) {
  if (text.empty()) return dispatch(handler);
  if (text.front() == ':') return;  // a comment
  // Most lines are data lines: no search for the colon.
  if (text.size() >= 5 && std::memcmp(text.data(), "data:", 5) == 0) {
    std::string_view value = text.substr(5);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (!dropping_) append_data(value, stable);
    return;
  }
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return field(text, {}, stable);
  std::string_view value = text.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  field(text.substr(0, colon), value, stable);
}

void Framer::field(std::string_view name, std::string_view value, bool stable) {
  if (name == "data") {
    if (!dropping_) append_data(value, stable);
  } else if (name == "event") {
    type_.assign(value);
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos) id_.assign(value);
  } else if (name == "retry") {
    if (std::optional<uint64_t> ms = parse_retry(value)) retry_ms_ = ms;
  }
}

void Framer::append_data(std::string_view value, bool stable) {
  const size_t held = in_view_ ? view_.size() : data_.size();
  if ((has_data_ ? held + 1 : 0) + value.size() > max_event_size_) return drop_event();
  if (!has_data_ && stable) {  // the common case: one data line, read in place
    view_ = value;
    in_view_ = true;
    has_data_ = true;
    return;
  }
  materialize();
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

void Framer::materialize() {
  if (!in_view_) return;
  data_.assign(view_);
  in_view_ = false;
}

void Framer::drop_event() {
  dropping_ = true;
  data_.clear();
  in_view_ = false;
  has_data_ = false;
}

void Framer::dispatch(Handler& handler) {
  last_id_ = id_;
  if (dropping_) {
    ++dropped_;
    dropping_ = false;
  } else if (has_data_) {
    ++events_;
    handler.on_event(Event{in_view_ ? view_ : std::string_view(data_), type_, last_id_});
  }
  data_.clear();
  in_view_ = false;
  has_data_ = false;
  type_.clear();
}

void Framer::end_of_stream() {
  partial_.clear();
  skipping_line_ = false;
  cr_pending_ = false;
  bom_matched_ = 0;
  bom_done_ = false;
  data_.clear();
  in_view_ = false;
  has_data_ = false;
  dropping_ = false;
  type_.clear();
  id_ = last_id_;
}

}  // namespace ingestd::plugins::sse
