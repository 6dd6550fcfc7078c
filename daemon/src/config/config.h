// The config layer: pipeline YAML text -> a validated model (config::Pipeline).
//
// load() reports every error it finds, each as `file:line:col: message` (1-based), sorted by
// position; it never stops at the first. It checks the top-level keys, each component's core keys
// (type, inputs, workers, queue; retry, breaker and spool for sinks) and plugin options against the
// component's schema (unknown keys with "did you mean", wrong types, missing required options,
// ranges, choices), substitutes
// ${VAR} and ${VAR:-default} in scalars, and checks the graph (unique names, dangling inputs,
// inputs of the wrong kind, cycles, `component.port` inputs naming a side output that the
// component lacks or has off, and side outputs that are on but that nothing reads). It does not run
// plugin factories: the graph layer does, with the positions kept here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/plugin.h"
#include "ingestd/schema.h"

namespace ingestd::config {

struct Position {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct Error {
  Position pos;
  std::string message;
  std::string to_string() const;  // "file:line:col: message"
};

enum class WhenFull { kBlock, kDropNewest };

struct QueueConfig {
  size_t max_batches = 16;
  size_t max_bytes = 64u << 20;
  WhenFull when_full = WhenFull::kBlock;
};

// A sink's retry schedule (`retry:`); see reliability::RetryPolicy.
enum class Jitter { kFull, kNone };
struct RetryConfig {
  int64_t initial_ns = 100'000'000;  // 100ms
  int64_t max_ns = 30'000'000'000;   // 30s
  double multiplier = 2.0;
  Jitter jitter = Jitter::kFull;
  uint64_t max_attempts = 0;   // 0: unlimited
  int64_t max_elapsed_ns = 0;  // 0: unlimited
  bool operator==(const RetryConfig&) const = default;
};

// A sink's circuit breaker (`breaker:`); see reliability::CircuitBreaker.
struct BreakerConfig {
  uint64_t failures = 5;     // consecutive failures that open it; 0: off
  double failure_ratio = 0;  // failed share of the calls within `window` that opens it; 0: off
  int64_t window_ns = 60'000'000'000;
  int64_t open_for_ns = 10'000'000'000;
  uint64_t half_open_probes = 1;  // calls let through at once while half-open
  bool operator==(const BreakerConfig&) const = default;
};

// A sink's disk spool (`spool:`, or `spool: false` for none); see reliability::Spool.
struct SpoolConfig {
  enum class Fsync { kAlways, kInterval, kNever };
  enum class SpoolFull { kBlock, kDropOldest };
  enum class Replay { kOrdered, kBackfill };

  bool enabled = true;
  uint64_t max_size = uint64_t{1} << 30;       // bytes of segments on disk, at most
  uint64_t segment_size = uint64_t{64} << 20;  // a segment is closed before it would pass this
  Fsync fsync = Fsync::kInterval;
  int64_t fsync_interval_ns = 1'000'000'000;  // kInterval: the longest time between two fsyncs
  SpoolFull when_full = SpoolFull::kBlock;
  Replay replay = Replay::kOrdered;
  uint64_t replay_rate = 20'000;  // events per second while draining

  bool operator==(const SpoolConfig&) const = default;
};

struct ComponentConfig {
  std::string name;
  Kind kind = Kind::kSource;
  std::string type;
  const ComponentDescriptor* descriptor = nullptr;
  // Component names, or `component.port` for a side output of it (see SideOutputSpec).
  std::vector<std::string> inputs;
  // The side outputs its options turn on (SideOutputSpec::name), in descriptor order. Each has a
  // consumer in a loaded Pipeline.
  std::vector<std::string> side_outputs;
  // Parsers and sinks: the instances that run in parallel. When the config does not say,
  // default_workers() for the component's kind and flags.
  int workers = 1;
  QueueConfig queue;      // the component's input queue (not for sources)
  RetryConfig retry;      // sinks only
  BreakerConfig breaker;  // sinks only
  SpoolConfig spool;      // sinks only
  Options options;        // plugin options, validated, defaults applied (after a failed load, a
                          // value that failed is replaced by its default or left out)
  Position pos;           // of the component's name key
  std::map<std::string, Position> option_positions;  // dotted option path -> position of its value
  // Canonical text of the component's own configuration (type, workers, queue, retry, breaker,
  // spool, options; not its inputs, which are edges): equal iff that configuration is equal,
  // however it is written.
  std::string fingerprint;
  // Its factory can run on `options`. Always true in a loaded Pipeline; in the partial result of
  // a failed load it tells which components can still be checked by their factories: those whose
  // type is known and whose required options have values, whatever other errors they have.
  bool valid = true;
};

// `admin:` at the top level: the admin HTTP server (metrics, health, status, aggregates).
// `admin: false` turns it off.
struct AdminConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:8686";  // host:port (IPv6 as [::1]:port); port 0: any free one
  std::string token_file;                 // a file holding the bearer token; required off loopback
  int64_t unhealthy_after_ns = 60'000'000'000;  // /health fails once a breaker is open this long
  bool operator==(const AdminConfig&) const = default;
};

// "host:port" split; false with a reason when it is not an IP literal (or "localhost") and a
// port in 0..65535.
bool parse_listen(std::string_view listen, std::string& host, uint16_t& port, std::string& error);
// 127.0.0.0/8, ::1 or localhost.
bool is_loopback(std::string_view host);

// The cores this process may run on (sched_getaffinity), 1 to 64.
int usable_cores();
// The `workers` of a component whose config does not set it: usable_cores() for parsers and for
// sinks without the kSingleWorker or kOrderedWrites flag, else 1.
int default_workers(Kind kind, uint32_t flags);

struct Pipeline {
  std::string path;  // as given, used in messages
  std::string data_dir = "/var/lib/ingestd";
  std::string log_level = "info";
  std::string log_target = "auto";  // auto (journald when stderr is the journal), stderr, journald
  std::vector<std::string> plugin_dirs;
  int64_t shutdown_timeout_ns = 30'000'000'000;
  BatchLimits batch;
  int io_threads = 1;
  AdminConfig admin;
  std::vector<ComponentConfig> components;  // sources, parsers, aggregates, sinks; in file order

  const ComponentConfig* find(std::string_view name) const;
};

// Which component types exist (the plugin catalog).
class Catalog {
 public:
  virtual ~Catalog() = default;
  virtual const ComponentDescriptor* find(Kind kind, std::string_view type) const = 0;
  virtual std::vector<std::string> types(Kind kind) const = 0;  // sorted
};

// Looks up an environment variable; std::nullopt when unset.
using Environment = std::function<std::optional<std::string>(std::string_view)>;
Environment process_environment();

// `path` names the file in messages; `text` is its content. On failure, `partial` (when given)
// receives what could be read, so that the valid components' factories can report in the same
// run ("all errors at once").
std::optional<Pipeline> load(const std::string& path, std::string_view text, const Catalog& catalog,
                             const Environment& env, std::vector<Error>& errors,
                             Pipeline* partial = nullptr);

// The `plugin_dirs:` list of a config, read leniently before plugins are loaded (errors are left
// to load()). Environment references are substituted.
std::vector<std::string> read_plugin_dirs(std::string_view text, const Environment& env);

// Validates a YAML mapping of one component's plugin options against its schema alone and applies
// defaults (no core keys, no graph). For tests and tools; `path` names the text in messages.
std::optional<Options> options_from_yaml(const ComponentDescriptor& descriptor,
                                         std::string_view yaml, std::vector<Error>& errors,
                                         const std::string& path = "<options>");

// Parsers for the value syntaxes; false on bad input. Shared with the schema defaults.
bool parse_duration(std::string_view text, int64_t& ns);  // "250ms", "1.5s", "5m", "1h", "0"
bool parse_size(std::string_view text, uint64_t& bytes);  // "4096", "64KiB", "1MiB", "1GB"

// An `inputs:` entry split at its first '.': the component and the port ("" for the main output).
std::pair<std::string_view, std::string_view> split_input(std::string_view input);

const char* kind_name(Kind kind);     // "source", "parser", "aggregate", "sink"
const char* section_name(Kind kind);  // "sources", "parsers", "aggregates", "sinks"

}  // namespace ingestd::config
