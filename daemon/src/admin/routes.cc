#include "admin/routes.h"

#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <simdjson.h>

#include "admin/dashboard.h"
#include "admin/exposition.h"
#include "ingestd/json.h"

namespace ingestd::admin {

namespace {

constexpr std::string_view kAggregates = "/api/v1/aggregates/";
constexpr size_t kMaxRows = 100'000;

Response error(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\"error\":";
  json::append_string(r.body, message);
  r.body += "}\n";
  return r;
}

// Constant time in the token's length: the comparison does not tell how much of it matched.
bool same(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ (i < b.size() ? b[i] : 0);
  return diff == 0;
}

bool authorized(std::string_view header, std::string_view token) {
  if (token.empty()) return true;
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() < kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i])))
      return false;
  return same(header.substr(kBearer.size()), token);
}

// Unix seconds (fractions allowed) as ns; false when it is not a finite number in range.
bool parse_seconds(std::string_view text, int64_t& ns) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
      std::fabs(seconds) > 9.2e9)
    return false;
  ns = static_cast<int64_t>(std::llround(seconds * 1e9));
  return true;
}

// If-None-Match: "*" or a list of entity tags (weak ones compared weakly, as RFC 9110 says).
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

// Reads the query string into `query`; a 400 response when a parameter is bad or unknown.
bool read_query(std::string_view qs, Aggregator::InspectQuery& query, Response& bad) {
  while (!qs.empty()) {
    size_t amp = qs.find('&');
    std::string_view part = qs.substr(0, amp);
    qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string name, value;
    if (!url_decode(part.substr(0, eq), name) ||
        (eq != std::string_view::npos && !url_decode(part.substr(eq + 1), value))) {
      bad = error(400, fmt::format("bad percent-encoding in '{}'", part));
      return false;
    }
    if (eq == std::string_view::npos) {
      bad = error(400, fmt::format("parameter '{}' has no value", name));
      return false;
    }
    if (name == "where") {
      size_t sep = value.find('=');
      if (sep == std::string::npos || sep == 0) {
        bad = error(400, fmt::format("where: expected key=value, got '{}'", value));
        return false;
      }
      query.where.emplace_back(value.substr(0, sep), value.substr(sep + 1));
    } else if (name == "from" || name == "to") {
      int64_t ns = 0;
      if (!parse_seconds(value, ns)) {
        bad = error(400, fmt::format("{}: expected Unix seconds, got '{}'", name, value));
        return false;
      }
      (name == "from" ? query.from_ns : query.to_ns) = ns;
    } else if (name == "limit") {
      size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n == 0 || n > kMaxRows) {
        bad = error(400, fmt::format("limit: expected 1..{}, got '{}'", kMaxRows, value));
        return false;
      }
      query.max_rows = n;
    } else {
      bad = error(400, fmt::format("unknown parameter '{}' (where, from, to, limit)", name));
      return false;
    }
  }
  if (query.from_ns > query.to_ns) {
    bad = error(400, "from is after to");
    return false;
  }
  return true;
}

Response aggregates(control::DaemonApi& api, std::string_view path, std::string_view qs) {
  std::string_view rest = path.substr(kAggregates.size());
  bool total = false;
  if (rest.ends_with("/total")) {
    total = true;
    rest.remove_suffix(6);
  }
  std::string component;
  if (rest.empty() || rest.find('/') != std::string_view::npos || !url_decode(rest, component))
    return error(404, "expected /api/v1/aggregates/<component>[/total]");
  Aggregator::InspectQuery query;
  Response bad;
  if (!read_query(qs, query, bad)) return bad;
  Response r;
  try {
    r.body = api.aggregates_json(component, query);
    if (total) r.body = total_json(r.body);
    r.body += '\n';
  } catch (const control::DaemonApi::NoSuchAggregator& e) {
    return error(404, e.what());
  } catch (const std::exception& e) {
    return error(503, e.what());
  }
  return r;
}

// The dashboard's files carry no data (the page asks the API for it, with the token), so they are
// served without one: the page can then ask the operator for it.
Response dashboard(const Asset& asset, const Request& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = error(405, fmt::format("{} is not allowed here; use GET", request.method));
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  Response r;
  r.content_type = std::string(asset.content_type);
  // Revalidated on every load (a 304 costs a few bytes), so an upgraded daemon's page is never
  // mixed with a cached older script.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", std::string(asset.etag));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // Everything the page loads is its own: no inline script, no other origin.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  if (etag_matches(request.if_none_match, asset.etag)) {
    r.status = 304;
    return r;
  }
  r.body = std::string(asset.bytes);
  return r;
}

Response answer(control::DaemonApi& api, const Request& request, std::string_view token) {
  std::string_view target = request.target;
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view qs = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (const Asset* asset = find_dashboard_asset(path)) return dashboard(*asset, request);
  const bool known = path == "/metrics" || path == "/health" || path == "/api/v1/status" ||
                     path.starts_with(kAggregates);
  if (!known) return error(404, fmt::format("no such resource: {}", path));
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = error(405, fmt::format("{} is not allowed here; use GET", request.method));
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (!authorized(request.authorization, token)) {
    Response r = error(401, "a bearer token is required (Authorization: Bearer <token>)");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ingestd\"");
    return r;
  }
  if (path == "/metrics") {
    Format format = negotiate(request.accept);
    Response r;
    r.content_type = std::string(content_type(format));
    r.body = render(api.metric_families(), format);
    return r;
  }
  if (path == "/health") {
    control::DaemonApi::Health h = api.health();
    Response r;
    r.status = h.ok ? 200 : 503;
    r.content_type = "text/plain; charset=utf-8";
    r.body = (h.ok ? "ok: " : "unhealthy: ") + h.reason + "\n";
    return r;
  }
  if (path == "/api/v1/status") {
    Response r;
    r.body = api.status_json() + "\n";
    return r;
  }
  return aggregates(api, path, qs);
}

}  // namespace

bool url_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int v = 0;
      auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
      if (ec != std::errc() || end != in.data() + i + 3) return false;
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

std::string total_json(std::string_view rows) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(rows);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || !doc.is_array())
    throw std::runtime_error("the aggregator's rows are not a JSON array");
  struct Window {
    std::string start, end;  // raw JSON, "" when absent
    uint64_t groups = 0;
    std::vector<std::pair<std::string, double>> sums;  // in first-seen order
    std::vector<bool> integral;
  };
  std::vector<Window> windows;
  std::map<std::pair<std::string, std::string>, size_t> index;
  for (simdjson::dom::element row : doc.get_array()) {
    simdjson::dom::object obj;
    if (row.get_object().get(obj) != simdjson::SUCCESS)
      throw std::runtime_error("an aggregator's row is not a JSON object");
    std::string start, end;
    for (auto field : obj) {
      if (field.key == "window_start") start = simdjson::to_string(field.value);
      if (field.key == "window_end") end = simdjson::to_string(field.value);
    }
    auto [it, added] = index.try_emplace({start, end}, windows.size());
    if (added) windows.push_back({start, end, 0, {}, {}});
    Window& w = windows[it->second];
    ++w.groups;
    for (auto field : obj) {
      double v = 0;
      bool integral = false;
      if (field.value.is_int64()) {
        v = static_cast<double>(int64_t(field.value));
        integral = true;
      } else if (field.value.is_uint64()) {
        v = static_cast<double>(uint64_t(field.value));
        integral = true;
      } else if (field.value.is_double()) {
        v = double(field.value);
      } else {
        continue;
      }
      if (field.key == "window_start" || field.key == "window_end") continue;
      size_t i = 0;
      while (i < w.sums.size() && w.sums[i].first != field.key) ++i;
      if (i == w.sums.size()) {
        w.sums.emplace_back(std::string(field.key), 0.0);
        w.integral.push_back(true);
      }
      w.sums[i].second += v;
      if (!integral) w.integral[i] = false;
    }
  }
  std::string out = "[";
  for (const Window& w : windows) {
    if (out.size() > 1) out += ',';
    out += '{';
    if (!w.start.empty()) out += "\"window_start\":" + w.start + ',';
    if (!w.end.empty()) out += "\"window_end\":" + w.end + ',';
    out += fmt::format("\"groups\":{}", w.groups);
    for (size_t i = 0; i < w.sums.size(); ++i) {
      out += ',';
      json::append_string(out, w.sums[i].first);
      out += ':';
      if (w.integral[i] && std::fabs(w.sums[i].second) < 9e15)
        out += std::to_string(static_cast<int64_t>(w.sums[i].second));
      else
        out += fmt::format("{}", w.sums[i].second);
    }
    out += '}';
  }
  out += ']';
  return out;
}

Response route(control::DaemonApi& api, const Request& request, std::string_view token) {
  try {
    return answer(api, request, token);
  } catch (const std::exception& e) {
    return error(500, e.what());
  } catch (...) {
    return error(500, "internal error");
  }
}

}  // namespace ingestd::admin
