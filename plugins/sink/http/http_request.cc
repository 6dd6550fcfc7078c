#include "http_request.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include <fmt/format.h>

namespace ingestd::plugins::http {

namespace {

constexpr size_t kErrorBodyBytes = 200;

bool parse_port(std::string_view text, uint16_t& port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535)
    return false;
  port = static_cast<uint16_t>(value);
  return true;
}

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
  });
}

// The start of a body for an error text: at most kErrorBodyBytes, control characters as spaces.
std::string body_excerpt(std::string_view body) {
  std::string out(body.substr(0, kErrorBodyBytes));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  if (body.size() > kErrorBodyBytes) out += "...";
  return out;
}

}  // namespace

std::optional<Url> parse_url(std::string_view text, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (text.size() >= 8 && iequals(text.substr(0, 8), "https://")) {
    error = "https is not supported: use an http:// URL (TLS is for a proxy in front of it)";
    return std::nullopt;
  }
  if (text.size() < kScheme.size() || !iequals(text.substr(0, kScheme.size()), kScheme)) {
    error = fmt::format("'{}' is not an http:// URL", text);
    return std::nullopt;
  }
  std::string_view rest = text.substr(kScheme.size());
  if (rest.find('#') != std::string_view::npos) {
    error = "a URL sent to a server has no #fragment";
    return std::nullopt;
  }
  size_t path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  Url url;
  if (path_at != std::string_view::npos) {
    url.target = std::string(rest.substr(path_at));
    if (url.target.front() == '?') url.target.insert(0, "/");
  }
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      error = "the path has a space or control character: percent-encode it";
      return std::nullopt;
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    error =
        "user information in the URL is not supported: send credentials with `headers` "
        "(Authorization)";
    return std::nullopt;
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "the IPv6 address has no closing ']'";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = fmt::format("unexpected '{}' after the IPv6 address", after);
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    error = fmt::format("'{}' names no host", text);
    return std::nullopt;
  }
  if (!port.empty() && !parse_port(port, url.port)) {
    error = fmt::format("port '{}' is not a number from 1 to 65535", port);
    return std::nullopt;
  }
  url.host = std::string(host);
  bool v6 = url.host.find(':') != std::string::npos;
  url.host_header = v6 ? "[" + url.host + "]" : url.host;
  if (url.port != 80) url.host_header += fmt::format(":{}", url.port);
  return url;
}

std::string header_name_problem(std::string_view name) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
    return "is not a valid header name";
  for (std::string_view owned : {"Content-Length", "Transfer-Encoding", "Connection"})
    if (iequals(name, owned)) return "is set by the sink for each request";
  if (iequals(name, "Content-Encoding")) return "is set by the sink: use `gzip: true`";
  return {};
}

std::string header_value_problem(std::string_view value) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    return "must not contain a line break or NUL";
  return {};
}

bool read_headers(const OptionValue& headers, std::initializer_list<std::string_view> owned,
                  std::string_view owned_why, Headers& out, Diagnostics& diag) {
  bool ok = true;
  for (const auto& [name, value] : headers.entries) {
    const std::string path = "headers." + name;
    std::string problem;
    if (std::any_of(owned.begin(), owned.end(),
                    [&](std::string_view o) { return iequals(name, o); }))
      problem = fmt::format("'{}' {}", name, owned_why);
    else if (std::string why = header_name_problem(name); !why.empty())
      problem = fmt::format("'{}' {}", name, why);
    if (!problem.empty()) {
      diag.error(path, problem);
      ok = false;
      continue;
    }
    for (const std::string& v : value.list) {
      if (std::string why = header_value_problem(v); !why.empty()) {
        diag.error(path, why);
        ok = false;
        continue;
      }
      out.emplace_back(name, v);
    }
  }
  return ok;
}

Format format_from(std::string_view name) {
  return name == "json_array" ? Format::kJsonArray : Format::kNdjson;
}

const char* content_type(Format format) {
  return format == Format::kJsonArray ? "application/json" : "application/x-ndjson";
}

size_t build_body(std::string& out, const Batch& batch, size_t first, Format format,
                  json::Encoding encoding, uint64_t max_body) {
  out.clear();
  const auto events = batch.events();
  const bool array = format == Format::kJsonArray;
  if (array) out += '[';
  size_t i = first;
  for (; i < events.size(); ++i) {
    const size_t before = out.size();
    if (array && i != first) out += ',';
    json::append_line(out, batch, events[i], encoding);
    if (array) out.pop_back();  // the newline
    // The closing bracket counts too. The first event always goes, however large: the server
    // judges it (413 is permanent, so it is dead-lettered rather than retried forever).
    const size_t size = out.size() + (array ? 1 : 0);
    if (max_body != 0 && size > max_body && i != first) {
      out.resize(before);
      break;
    }
  }
  if (array) out += ']';
  return i;
}

bool gzip(std::string_view in, std::string& out, std::string& error) {
  z_stream z{};
  // 15 window bits + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    error = "cannot start gzip: out of memory";
    return false;
  }
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  // deflateBound() is enough for a single Z_FINISH call.
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    error = fmt::format("gzip failed: {}", z.msg ? z.msg : "unexpected end");
    return false;
  }
  return true;
}

std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ns) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc{} && end == value.data() + value.size())
    return seconds < 0 ? std::nullopt : std::optional<int64_t>(seconds * 1'000'000'000);
  // IMF-fixdate, the form HTTP/1.1 servers must send (RFC 9110 5.6.7).
  std::tm tm{};
  const std::string text(value);
  const char* rest = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (rest == nullptr || *rest != '\0') return std::nullopt;
  const int64_t at_ns = static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000;
  return std::max<int64_t>(0, at_ns - now_ns);
}

SinkResult classify(const Response& response, int64_t now_ns) {
  const int status = response.status;
  if (status >= 200 && status < 300) return SinkResult::ok();
  std::string error = fmt::format("HTTP {}", status);
  if (!response.reason.empty()) error += fmt::format(" {}", body_excerpt(response.reason));
  const bool retryable = status == 408 || status == 429 || (status >= 500 && status < 600);
  std::optional<int64_t> wait;
  if (status == 429 || status == 503) wait = parse_retry_after(response.retry_after, now_ns);
  if (wait) error += fmt::format(" (Retry-After: {})", response.retry_after);
  if (status >= 300 && status < 400) error += " (redirects are not followed: fix the url)";
  if (!response.body.empty()) error += fmt::format(": {}", body_excerpt(response.body));
  if (!retryable) return SinkResult::permanent(std::move(error));
  SinkResult r = SinkResult::retryable(std::move(error));
  r.retry_after_ns = wait.value_or(0);
  return r;
}

}  // namespace ingestd::plugins::http
