#include "top.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <simdjson.h>

#include "ingestd/json.h"

namespace ingestd::ctl {
namespace {

using simdjson::dom::element;
using Field = simdjson::simdjson_result<element>;

std::string text(Field value) {
  std::string_view s;
  return value.get(s) == simdjson::SUCCESS ? std::string(s) : std::string();
}

std::optional<uint64_t> number(Field value) {
  uint64_t n = 0;
  if (value.get(n) == simdjson::SUCCESS) return n;
  return std::nullopt;
}

double real(Field value) {
  double d = 0;
  if (value.get(d) == simdjson::SUCCESS) return d;
  int64_t i = 0;
  if (value.get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  return 0;
}

int kind_rank(const std::string& kind) {
  static const char* const kOrder[] = {"source", "parser", "aggregate", "sink"};
  for (int i = 0; i < 4; ++i)
    if (kind == kOrder[i]) return i;
  return 4;
}

std::string short_kind(const std::string& kind) {
  if (kind == "source") return "src";
  if (kind == "parser") return "parse";
  if (kind == "aggregate") return "aggr";
  return kind;
}

uint64_t sum(const ComponentStatus& c, std::initializer_list<const char*> names) {
  uint64_t total = 0;
  for (const char* name : names)
    if (auto it = c.counters.find(name); it != c.counters.end()) total += it->second;
  return total;
}

std::optional<double> rate(std::optional<uint64_t> before, std::optional<uint64_t> now,
                           double seconds) {
  if (!before || !now || *now < *before || seconds <= 0) return std::nullopt;
  return static_cast<double>(*now - *before) / seconds;
}

std::string human_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{}B", bytes) : fmt::format("{:.1f}{}", v, kUnits[unit]);
}

std::string or_dash(const std::optional<double>& value) {
  return value ? human(*value) : "-";
}

// Column widths of the components' table, but for the name's, which takes what is left.
constexpr size_t kKindW = 5, kTypeW = 10, kStateW = 7, kRateW = 7, kFillW = 5, kCountW = 6;
constexpr size_t kFixedW = kKindW + kTypeW + kStateW + 2 * kRateW + kFillW + 2 * kCountW + 8;
constexpr size_t kMinNameW = 8, kMaxNameW = 32;
// The sinks' table.
constexpr size_t kBreakerW = 9, kForW = 7, kBytesW = 9, kRecordsW = 8;

size_t name_width(int width) {
  long w = static_cast<long>(width) - static_cast<long>(kFixedW);
  return std::clamp<size_t>(w < 0 ? 0 : static_cast<size_t>(w), kMinNameW, kMaxNameW);
}

}  // namespace

std::string human(double value) {
  if (!std::isfinite(value)) return "-";
  double a = std::fabs(value);
  if (a < 10 && a != std::floor(a)) return fmt::format("{:.1f}", value);
  if (a < 10'000) return fmt::format("{:.0f}", value);
  static const char* const kSuffix[] = {"k", "M", "G", "T"};
  int i = 0;
  double v = value / 1000;
  while (std::fabs(v) >= 1000 && i < 3) {
    v /= 1000;
    ++i;
  }
  return std::fabs(v) < 100 ? fmt::format("{:.1f}{}", v, kSuffix[i])
                            : fmt::format("{:.0f}{}", v, kSuffix[i]);
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  auto s = static_cast<uint64_t>(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string fit(const std::string& text, size_t width) {
  if (text.size() <= width) return text;
  if (width == 0) return "";
  return text.substr(0, width - 1) + "~";
}

std::string describe_reload(Field report) {
  int64_t ns = 0;
  if (report["finished_realtime_ns"].get(ns) != simdjson::SUCCESS || ns == 0) return "none";
  bool ok = false;
  if (report["ok"].get(ok) != simdjson::SUCCESS) ok = false;
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  return fmt::format("{} at {:%Y-%m-%dT%H:%M:%SZ}: {}", ok ? "ok" : "failed", fmt::gmtime(secs),
                     text(report["message"]));
}

bool parse_status(const std::string& json, StatusSnapshot& out, std::string& error) {
  simdjson::dom::parser parser;
  element doc;
  simdjson::dom::object object;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS || doc.get(object) != simdjson::SUCCESS) {
    error = "GetStatus returned something that is not a JSON object";
    return false;
  }
  out = StatusSnapshot();
  out.state = text(doc["state"]);
  out.version = text(doc["version"]);
  out.config_path = text(doc["config_path"]);
  out.pid = static_cast<int64_t>(number(doc["pid"]).value_or(0));
  out.uptime_seconds = real(doc["uptime_seconds"]);
  out.last_reload = describe_reload(doc["last_reload"]);
  simdjson::dom::array components;
  if (doc["components"].get(components) != simdjson::SUCCESS) return true;
  for (element e : components) {
    ComponentStatus& c = out.components.emplace_back();
    if (e.is_string()) {  // an older daemon's bare name
      c.name = text(Field(element(e)));
      continue;
    }
    c.name = text(e["name"]);
    c.kind = text(e["kind"]);
    c.type = text(e["type"]);
    c.state = text(e["state"]);
    c.events_in = number(e["events_in"]);
    c.events_out = number(e["events_out"]);
    element queue;
    if (e["queue"].get(queue) == simdjson::SUCCESS) {
      c.has_queue = true;
      c.queue_batches = number(queue["batches"]).value_or(0);
      c.queue_max_batches = number(queue["max_batches"]).value_or(0);
      c.queue_bytes = number(queue["bytes"]).value_or(0);
      c.queue_max_bytes = number(queue["max_bytes"]).value_or(0);
    }
    simdjson::dom::object counters;
    if (e["counters"].get(counters) == simdjson::SUCCESS)
      for (auto field : counters)
        if (auto n = number(Field(element(field.value)))) c.counters[std::string(field.key)] = *n;
    c.breaker = text(e["breaker"]);
    c.breaker_not_closed_seconds = real(e["breaker_not_closed_seconds"]);
    if (auto bytes = number(e["spool_bytes"])) {
      c.spooling = true;
      c.spool_bytes = *bytes;
      c.spool_records = number(e["spool_records"]).value_or(0);
      c.spool_events = number(e["spool_events"]).value_or(0);
    }
  }
  return true;
}

uint64_t drops(const ComponentStatus& c) {
  return sum(c, {"queue_dropped", "shutdown_dropped", "dropped"});
}

uint64_t errors(const ComponentStatus& c) {
  return sum(c, {"failed", "dead_letters", "errors", "malformed", "rejected", "delivery_failed"});
}

std::vector<ComponentRates> compute_rates(const StatusSnapshot* before, const StatusSnapshot& now) {
  double seconds = before ? now.uptime_seconds - before->uptime_seconds : 0;
  std::vector<ComponentRates> rows;
  for (const ComponentStatus& c : now.components) {
    ComponentRates& r = rows.emplace_back();
    r.now = &c;
    if (before) {
      auto was = std::find_if(before->components.begin(), before->components.end(),
                              [&](const ComponentStatus& b) { return b.name == c.name; });
      if (was != before->components.end()) {
        r.in_per_second = rate(was->events_in, c.events_in, seconds);
        r.out_per_second = rate(was->events_out, c.events_out, seconds);
      }
    }
    if (c.has_queue) {
      double fill = 0;
      if (c.queue_max_batches > 0)
        fill = static_cast<double>(c.queue_batches) / static_cast<double>(c.queue_max_batches);
      if (c.queue_max_bytes > 0)
        fill = std::max(
            fill, static_cast<double>(c.queue_bytes) / static_cast<double>(c.queue_max_bytes));
      r.queue_fill = std::min(fill, 1.0);
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const ComponentRates& a, const ComponentRates& b) {
    int ka = kind_rank(a.now->kind), kb = kind_rank(b.now->kind);
    return ka != kb ? ka < kb : a.now->name < b.now->name;
  });
  return rows;
}

std::vector<std::string> render_top(const StatusSnapshot* before, const StatusSnapshot& now,
                                    double interval_seconds, int width) {
  const size_t w = static_cast<size_t>(std::max(width, 1));
  const size_t nw = name_width(width);
  std::vector<std::string> lines;
  auto add = [&](std::string line) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(fit(line, w));
  };
  add(fmt::format("ingestd {}  {}  up {}  pid {}  every {}s", now.version,
                  now.state.empty() ? "?" : now.state, human_duration(now.uptime_seconds), now.pid,
                  human(interval_seconds)));
  add("config: " + now.config_path);
  add("last reload: " + now.last_reload);
  add("");
  add(fmt::format("{:<{}} {:<{}} {:<{}} {:<{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}}", "NAME", nw,
                  "KIND", kKindW, "TYPE", kTypeW, "STATE", kStateW, "IN/s", kRateW, "OUT/s", kRateW,
                  "QUEUE", kFillW, "DROPS", kCountW, "ERRORS", kCountW));
  const auto rows = compute_rates(before, now);
  bool any_sink = false;
  for (const ComponentRates& r : rows) {
    const ComponentStatus& c = *r.now;
    any_sink = any_sink || c.kind == "sink";
    std::string fill =
        r.queue_fill ? fmt::format("{:.0f}%", std::floor(*r.queue_fill * 100)) : std::string("-");
    add(fmt::format("{:<{}} {:<{}} {:<{}} {:<{}} {:>{}} {:>{}} {:>{}} {:>{}} {:>{}}",
                    fit(c.name, nw), nw, fit(short_kind(c.kind), kKindW), kKindW,
                    fit(c.type, kTypeW), kTypeW, fit(c.state.empty() ? "-" : c.state, kStateW),
                    kStateW, or_dash(r.in_per_second), kRateW, or_dash(r.out_per_second), kRateW,
                    fill, kFillW, human(static_cast<double>(drops(c))), kCountW,
                    human(static_cast<double>(errors(c))), kCountW));
  }
  if (!any_sink) return lines;
  add("");
  add(fmt::format("{:<{}} {:<{}} {:>{}} {:>{}} {:>{}} {:>{}}", "SINK", nw, "BREAKER", kBreakerW,
                  "FOR", kForW, "SPOOL", kBytesW, "RECORDS", kRecordsW, "EVENTS", kRecordsW));
  for (const ComponentRates& r : rows) {
    const ComponentStatus& c = *r.now;
    if (c.kind != "sink") continue;
    std::string open_for = c.breaker.empty() || c.breaker == "closed"
                               ? std::string("-")
                               : human_duration(c.breaker_not_closed_seconds);
    add(fmt::format("{:<{}} {:<{}} {:>{}} {:>{}} {:>{}} {:>{}}", fit(c.name, nw), nw,
                    fit(c.breaker.empty() ? "-" : c.breaker, kBreakerW), kBreakerW, open_for, kForW,
                    c.spooling ? human_bytes(c.spool_bytes) : "-", kBytesW,
                    c.spooling ? human(static_cast<double>(c.spool_records)) : "-", kRecordsW,
                    c.spooling ? human(static_cast<double>(c.spool_events)) : "-", kRecordsW));
  }
  return lines;
}

std::string top_json(const StatusSnapshot* before, const StatusSnapshot& now,
                     double interval_seconds) {
  auto optional = [](const std::optional<double>& v) {
    return v ? fmt::format("{:.3f}", *v) : std::string("null");
  };
  std::string out = "{\"state\":";
  json::append_string(out, now.state);
  out += ",\"version\":";
  json::append_string(out, now.version);
  out += ",\"config_path\":";
  json::append_string(out, now.config_path);
  out += fmt::format(",\"pid\":{},\"uptime_seconds\":{:.3f},\"interval_seconds\":{:.3f}", now.pid,
                     now.uptime_seconds, interval_seconds);
  out += ",\"last_reload\":";
  json::append_string(out, now.last_reload);
  out += ",\"components\":[";
  bool first = true;
  for (const ComponentRates& r : compute_rates(before, now)) {
    const ComponentStatus& c = *r.now;
    out += first ? "{" : ",{";
    first = false;
    out += "\"name\":";
    json::append_string(out, c.name);
    out += ",\"kind\":";
    json::append_string(out, c.kind);
    out += ",\"type\":";
    json::append_string(out, c.type);
    out += ",\"state\":";
    json::append_string(out, c.state);
    out += fmt::format(
        ",\"events_in_per_second\":{},\"events_out_per_second\":{},\"queue_fill\":{},"
        "\"dropped\":{},\"errors\":{}",
        optional(r.in_per_second), optional(r.out_per_second), optional(r.queue_fill), drops(c),
        errors(c));
    if (c.kind == "sink") {
      out += ",\"breaker\":";
      json::append_string(out, c.breaker);
      if (c.spooling)
        out += fmt::format(",\"spool_bytes\":{},\"spool_records\":{},\"spool_events\":{}",
                           c.spool_bytes, c.spool_records, c.spool_events);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace ingestd::ctl
