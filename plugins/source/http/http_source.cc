#include "http_source.h"

#include <arpa/inet.h>
#include <strings.h>
#include <sys/resource.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "server.h"

namespace ingestd::plugins {

namespace {

constexpr int64_t kStopWaitNs = 5'000'000'000;
// Files the daemon holds besides the source's connections (plugins, outputs, spool, journal).
constexpr uint64_t kSpareFiles = 256;

bool valid_route_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

}  // namespace

namespace http_source {

bool parse_listen(std::string_view listen, std::string& host, uint16_t& port, std::string& error) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    error = fmt::format("'{}' is not host:port (e.g. 127.0.0.1:8080)", listen);
    return false;
  }
  std::string_view h = listen.substr(0, colon), p = listen.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value > 65535) {
    error = fmt::format("'{}' is not a port (0 to 65535)", p);
    return false;
  }
  host = h == "localhost" ? "127.0.0.1" : std::string(h);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, host.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    error =
        fmt::format("'{}' is not an IP address (names other than localhost are not resolved)", h);
    return false;
  }
  port = static_cast<uint16_t>(value);
  return true;
}

std::string route_name(std::string_view path) {
  std::string name;
  for (char c : path) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      name += c;
    } else if (!name.empty() && name.back() != '_') {
      name += '_';
    }
  }
  while (!name.empty() && name.back() == '_') name.pop_back();
  return name.empty() ? "root" : name;
}

}  // namespace http_source

HttpSource::HttpSource(const Options& options, Diagnostics& diag)
    : token_file_(options.get_string("token_file")) {
  using http_source::Route;
  bool ok = true;
  auto fail = [&](std::string_view option, std::string_view message) {
    diag.error(option, message);
    ok = false;
  };
  std::string error;
  if (!http_source::parse_listen(options.get_string("listen"), settings_.host, settings_.port,
                                 error))
    fail("listen", error);

  std::set<std::string> paths, names;
  for (const auto& [index, item] : options.get_object_list("routes")) {
    const std::string at = "routes." + index;
    Route route;
    route.path = item.get_string("path");
    if (route.path.empty() || route.path.front() != '/') {
      fail(at + ".path", fmt::format("'{}' must begin with '/'", route.path));
    } else {
      std::string key = route.path;
      while (key.size() > 1 && key.back() == '/') key.pop_back();
      if (!paths.insert(key).second)
        fail(at + ".path", fmt::format("'{}' is the path of another route", route.path));
    }
    route.name = item.has("name") ? item.get_string("name") : http_source::route_name(route.path);
    if (!valid_route_name(route.name)) {
      fail(at + ".name",
           fmt::format("'{}' may hold only letters, digits, '_' and '-'", route.name));
    } else if (route.name == http_source::kUnrouted) {
      fail(at + ".name", fmt::format("'{}' names the counters of requests that match no route",
                                     http_source::kUnrouted));
    } else if (!names.insert(route.name).second) {
      fail(at + ".name", fmt::format("'{}' is the name of another route (set `name` to tell "
                                     "them apart)",
                                     route.name));
    }
    route.post = route.put = false;
    for (const std::string& m : item.get_list("methods")) {
      if (::strcasecmp(m.c_str(), "POST") == 0) {
        route.post = true;
      } else if (::strcasecmp(m.c_str(), "PUT") == 0) {
        route.put = true;
      } else {
        fail(at + ".methods", fmt::format("'{}' is not taken: POST or PUT", m));
      }
    }
    if (!route.post && !route.put) fail(at + ".methods", "names no method: POST, PUT or both");
    for (const auto& [name, value] : item.get_object("fields").entries) {
      if (value.list.size() != 1) {
        fail(at + ".fields." + name, "must be one string");
        continue;
      }
      route.fields.emplace_back(name, value.list.front());
    }
    for (const auto& [name, value] : item.get_object("require").entries) {
      std::optional<http_source::JsonKind> kind;
      if (value.list.size() == 1) kind = http_source::json_kind(value.list.front());
      if (!kind) {
        fail(at + ".require." + name,
             "must be one of string, number, integer, bool, object, array or any");
        continue;
      }
      route.require.push_back({name, *kind});
    }
    if (route.fields.size() > http_source::kMaxRouteFields)
      fail(at + ".fields", fmt::format("has {} fields; at most {}", route.fields.size(),
                                       http_source::kMaxRouteFields));
    settings_.routes.push_back(std::move(route));
  }
  if (options.has("routes") && settings_.routes.empty()) fail("routes", "names no route");
  settings_.unrouted.name = std::string(http_source::kUnrouted);

  settings_.durable = options.get_string("ack", "enqueue") == "durable";
  settings_.require_content_type = options.get_bool("require_content_type", false);
  settings_.ack_timeout_ns = options.get_duration_ns("ack_timeout", settings_.ack_timeout_ns);
  settings_.push_timeout_ns = options.get_duration_ns("push_timeout", settings_.push_timeout_ns);
  const int64_t retry_after_ns = options.get_duration_ns("retry_after", 1'000'000'000);
  settings_.retry_after_s = std::max<int64_t>(1, (retry_after_ns + 999'999'999) / 1'000'000'000);
  settings_.max_body_size = options.get_size("max_body_size", settings_.max_body_size);
  settings_.max_decompressed_size =
      options.get_size("max_decompressed_size", settings_.max_decompressed_size);
  settings_.max_header_size =
      static_cast<uint32_t>(options.get_size("max_header_size", settings_.max_header_size));
  settings_.header_timeout_ns =
      options.get_duration_ns("header_timeout", settings_.header_timeout_ns);
  settings_.body_timeout_ns = options.get_duration_ns("body_timeout", settings_.body_timeout_ns);
  settings_.idle_timeout_ns = options.get_duration_ns("idle_timeout", settings_.idle_timeout_ns);
  settings_.max_connections = static_cast<size_t>(
      options.get_int("max_connections", static_cast<int64_t>(settings_.max_connections)));
  settings_.token = options.get_string("token");
  if (options.has("token") && settings_.token.empty())
    fail("token", "is empty (an unset ${VAR}?): set a token or remove the option");
  if (!settings_.token.empty() && !token_file_.empty())
    fail("token_file", "is set with token: choose one");
  valid_ = ok;
}

HttpSource::~HttpSource() = default;

bool HttpSource::start(Context& ctx) {
  if (!valid_) return false;
  counters_.bind(ctx);
  for (auto& route : settings_.routes) route.counters.bind(ctx, route.name);
  settings_.unrouted.counters.bind(ctx, settings_.unrouted.name);
  if (!token_file_.empty()) {
    std::ifstream in(token_file_);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      ctx.logf(LogLevel::kError, "cannot read token_file {}", token_file_);
      return false;
    }
    settings_.token = std::string(http_source::trim_space(text.str()));
    if (settings_.token.empty()) {
      ctx.logf(LogLevel::kError, "token_file {} holds no token", token_file_);
      return false;
    }
  }
  if (rlimit limit{}; ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
                      limit.rlim_cur < settings_.max_connections + kSpareFiles)
    ctx.logf(LogLevel::kWarn,
             "the open file limit ({}) is below max_connections ({}) plus the daemon's own "
             "files: connections beyond it fail to be accepted (logged) before max_connections "
             "is reached; raise LimitNOFILE (systemd) or ulimit -n, or lower max_connections",
             limit.rlim_cur, settings_.max_connections);
  server_ = std::make_unique<http_source::Server>(ctx.io(), settings_, counters_, ctx);
  std::string error;
  if (!server_->listen(error)) {
    ctx.log(LogLevel::kError, error);
    server_.reset();
    return false;
  }
  return true;
}

void HttpSource::run(Context& ctx, Output& out) {
  if (!server_) return;
  ctx.logf(LogLevel::kInfo, "listening on {}:{} ({} route(s), ack: {})", settings_.host,
           server_->port(), settings_.routes.size(), settings_.durable ? "durable" : "enqueue");
  server_->serve(out);
  while (!ctx.wait_for_stop(kStopWaitNs)) {
  }
  server_->stop();
  while (!server_->wait_for(kStopWaitNs))
    ctx.log(LogLevel::kWarn, "connections are still open after the stop; waiting for them");
  server_.reset();
}

}  // namespace ingestd::plugins
