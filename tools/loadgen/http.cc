#include "http.h"

#include <strings.h>
#include <algorithm>
#include <charconv>

namespace ingestd::loadgen {

namespace {

constexpr size_t kMaxHead = 64 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::optional<Url> parse_url(std::string_view text, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, 8) == "https://") {
    error = "https is not supported: ingestd-loadgen speaks plain HTTP/1.1 (use http://)";
    return std::nullopt;
  }
  if (text.substr(0, kScheme.size()) != kScheme) {
    error = "the URL must start with http://";
    return std::nullopt;
  }
  text.remove_prefix(kScheme.size());
  Url url;
  const size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) url.target = std::string(text.substr(slash));
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8080
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed '[' in the URL's host";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
  } else {
    const size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
  }
  if (!authority.empty()) {
    if (authority.front() != ':') {
      error = "unexpected text after the URL's host";
      return std::nullopt;
    }
    authority.remove_prefix(1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(authority.data(), authority.data() + authority.size(), port);
    if (ec != std::errc{} || end != authority.data() + authority.size() || port == 0 ||
        port > 65535) {
      error = "the URL's port must be a number from 1 to 65535";
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  url.host = std::string(host);
  return url;
}

std::optional<std::pair<std::string, std::string>> parse_header(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view name = trim(text.substr(0, colon));
  if (name.empty()) return std::nullopt;
  return std::make_pair(std::string(name), std::string(trim(text.substr(colon + 1))));
}

std::string request_head(const Url& url, std::string_view content_type, bool gzip,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string head = "POST " + url.target + " HTTP/1.1\r\nHost: ";
  const bool ipv6 = url.host.find(':') != std::string::npos;
  if (ipv6) head += '[';
  head += url.host;
  if (ipv6) head += ']';
  if (url.port != 80) {
    head += ':';
    head += std::to_string(url.port);
  }
  head += "\r\nContent-Type: ";
  head += content_type;
  head += "\r\n";
  if (gzip) head += "Content-Encoding: gzip\r\n";
  for (const auto& [name, value] : headers) {
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  head += "Content-Length: ";
  return head;
}

void ResponseParser::reset() {
  phase_ = Phase::kHead;
  head_.clear();
  line_.clear();
  status_ = 0;
  keep_alive_ = true;
  remaining_ = 0;
}

ResponseParser::State ResponseParser::fail(std::string_view why) {
  error_ = why;
  return State::kError;
}

ResponseParser::State ResponseParser::feed(std::string_view data) {
  while (true) {
    switch (phase_) {
      case Phase::kHead: {
        const size_t before = head_.size();
        head_.append(data);
        // Search from 3 bytes back: the blank line may straddle two reads.
        const size_t end = head_.find("\r\n\r\n", before < 3 ? 0 : before - 3);
        if (end == std::string::npos) {
          if (head_.size() > kMaxHead) return fail("answer header over 64 KiB");
          return State::kNeedMore;
        }
        const size_t used = end + 4 - before;  // bytes of `data` that belong to the head
        head_.resize(end + 4);
        data.remove_prefix(used);
        State s = parse_head();
        if (s != State::kNeedMore) return s;
        break;
      }
      case Phase::kBody: {
        const uint64_t take = std::min<uint64_t>(remaining_, data.size());
        remaining_ -= take;
        data.remove_prefix(take);
        if (remaining_ == 0) return State::kComplete;
        return State::kNeedMore;
      }
      case Phase::kChunkSize:
      case Phase::kChunkCrlf:
      case Phase::kTrailer: {
        const size_t nl = data.find('\n');
        line_.append(data.substr(0, nl));
        if (nl == std::string_view::npos) {
          if (line_.size() > 4096) return fail("chunk line over 4 KiB");
          return State::kNeedMore;
        }
        data.remove_prefix(nl + 1);
        std::string_view line = trim(line_);
        if (phase_ == Phase::kChunkCrlf) {
          if (!line.empty()) return fail("no CRLF after a chunk");
          phase_ = Phase::kChunkSize;
        } else if (phase_ == Phase::kTrailer) {
          if (line.empty()) return State::kComplete;
        } else {
          line = line.substr(0, line.find(';'));
          uint64_t size = 0;
          auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
          if (ec != std::errc{} || end != line.data() + line.size())
            return fail("malformed chunk size");
          if (size == 0) {
            phase_ = Phase::kTrailer;
          } else {
            remaining_ = size;
            phase_ = Phase::kChunkData;
          }
        }
        line_.clear();
        break;
      }
      case Phase::kChunkData: {
        const uint64_t take = std::min<uint64_t>(remaining_, data.size());
        remaining_ -= take;
        data.remove_prefix(take);
        if (remaining_ != 0) return State::kNeedMore;
        phase_ = Phase::kChunkCrlf;
        break;
      }
      case Phase::kUntilClose:
        return State::kNeedMore;
    }
  }
}

ResponseParser::State ResponseParser::parse_head() {
  std::string_view head = head_;
  // HTTP/1.x SP status SP reason
  if (head.substr(0, 7) != "HTTP/1." || head.size() < 12 || head[8] != ' ')
    return fail("not an HTTP/1.x status line");
  auto [end, ec] = std::from_chars(head.data() + 9, head.data() + 12, status_);
  if (ec != std::errc{} || end != head.data() + 12 || status_ < 100)
    return fail("malformed status code");
  keep_alive_ = head[7] == '1';  // HTTP/1.0 closes unless it says keep-alive
  std::optional<uint64_t> length;
  bool chunked = false;
  size_t pos = head.find('\n') + 1;
  while (pos < head.size()) {
    const size_t nl = head.find('\n', pos);
    std::string_view line = head.substr(pos, nl - pos);
    pos = nl + 1;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      auto [e, c] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (c != std::errc{} || e != value.data() + value.size())
        return fail("malformed Content-Length");
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = has_token(value, "chunked");
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) keep_alive_ = false;
      if (has_token(value, "keep-alive")) keep_alive_ = true;
    }
  }
  if (status_ < 200) {  // 100 Continue and the like: the real answer follows
    head_.clear();
    phase_ = Phase::kHead;
    return State::kNeedMore;
  }
  if (status_ == 204 || status_ == 304) return State::kComplete;
  if (chunked) {
    phase_ = Phase::kChunkSize;
    return State::kNeedMore;
  }
  if (length) {
    if (*length == 0) return State::kComplete;
    remaining_ = *length;
    phase_ = Phase::kBody;
    return State::kNeedMore;
  }
  keep_alive_ = false;
  phase_ = Phase::kUntilClose;
  return State::kNeedMore;
}

ResponseParser::State ResponseParser::finish_at_eof() {
  if (phase_ == Phase::kUntilClose) return State::kComplete;
  return fail("the server closed the connection before the answer's end");
}

}  // namespace ingestd::loadgen
