#pragma once

// `ingestctl top`: the data and its rendering, apart from the terminal and the bus, so that they
// are tested without either. main.cc takes two GetStatus replies (parse_status()) one interval
// apart and prints what render_top() or top_json() make of them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <simdjson.h>

namespace ingestd::ctl {

// One component as GetStatus describes it (docs/operations.md, "GetStatus"). Missing keys stay
// at their defaults: an older daemon's status still renders, with dashes where it says nothing.
struct ComponentStatus {
  std::string name;
  std::string kind;  // source, parser, aggregate, sink
  std::string type;  // the plugin type
  std::string state;
  std::optional<uint64_t> events_in;  // not for sources
  std::optional<uint64_t> events_out;
  bool has_queue = false;
  uint64_t queue_batches = 0, queue_max_batches = 0, queue_bytes = 0, queue_max_bytes = 0;
  std::map<std::string, uint64_t> counters;  // the component's named counters
  std::string breaker;                       // sinks only
  double breaker_not_closed_seconds = 0;
  bool spooling = false;  // the sink has a spool
  uint64_t spool_bytes = 0, spool_records = 0, spool_events = 0;
};

// One GetStatus reply.
struct StatusSnapshot {
  std::string state;
  std::string version;
  std::string config_path;
  int64_t pid = 0;
  double uptime_seconds = 0;
  std::string last_reload;  // "none" or "ok at <UTC time>: <message>"
  std::vector<ComponentStatus> components;
};

// A status's `last_reload` (the LastReload property's object) as "none" or
// "ok at 2026-01-02T03:04:05Z: <message>" / "failed at ...: <message>".
std::string describe_reload(simdjson::simdjson_result<simdjson::dom::element> report);

// Parses a GetStatus reply; false, with the reason in `error`, when it is not such a reply.
bool parse_status(const std::string& json, StatusSnapshot& out, std::string& error);

// Drops: events a component let go on purpose or at a deadline (queue_dropped, shutdown_dropped,
// and a plugin's own "dropped"). Errors: events that failed (a sink's failed, dead_letters) and
// what plugins count as errors ("errors", "malformed", "rejected", "delivery_failed"). Totals
// since the daemon started.
uint64_t drops(const ComponentStatus& c);
uint64_t errors(const ComponentStatus& c);

// A component's row, computed from a snapshot and the one before it.
struct ComponentRates {
  const ComponentStatus* now = nullptr;
  std::optional<double> in_per_second;  // none: no counter, or no earlier sample to compare
  std::optional<double> out_per_second;
  std::optional<double> queue_fill;  // 0..1, the fuller of batches and bytes; none: no queue
};

// The rows in display order (sources, parsers, aggregates, sinks; by name within a kind).
// Rates are counter deltas over the daemon's uptime between the samples; a counter that went
// down (a restarted daemon) or a component new in `now` has no rate. The rows point into `now`,
// which must outlive them (a temporary is refused).
std::vector<ComponentRates> compute_rates(const StatusSnapshot* before, const StatusSnapshot& now);
std::vector<ComponentRates> compute_rates(const StatusSnapshot* before,
                                          const StatusSnapshot&& now) = delete;

// The screen as lines of at most `width` columns (ASCII only, so bytes are columns): a header
// (daemon state, uptime, pid, config, last reload), a table of components (kind, type, state,
// in/s, out/s, queue fill, drops, errors) and, when there are sinks, a table of their breakers
// and spools. Names too long for their column end in '~'.
std::vector<std::string> render_top(const StatusSnapshot* before, const StatusSnapshot& now,
                                    double interval_seconds, int width);

// The same as one JSON object, for --json.
std::string top_json(const StatusSnapshot* before, const StatusSnapshot& now,
                     double interval_seconds);

// "12", "9.5", "12.3k", "4.56M": a number in at most 6 columns.
std::string human(double value);
// "42s", "3m07s", "5h02m", "2d04h".
std::string human_duration(double seconds);
// `text` cut to `width` columns, its last one '~' when it was cut.
std::string fit(const std::string& text, size_t width);

}  // namespace ingestd::ctl
