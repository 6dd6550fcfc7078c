#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingestd/component.h"
#include "runtime/metrics.h"

namespace ingestd::control {

// The outcome of one reload, as logged, returned over D-Bus and shown in GetStatus.
struct ReloadReport {
  bool ok = false;
  // One line: "reloaded /etc/ingestd/pipeline.yaml: 3 kept, 1 replaced, 1 added, 0 removed",
  // or, on failure, the first error and how many more there are.
  std::string message;
  std::vector<std::string> errors;                          // every error, "file:line:col: message"
  std::vector<std::string> kept, replaced, added, removed;  // component names
  int64_t finished_realtime_ns = 0;  // CLOCK_REALTIME; 0: no reload has run yet
  std::string to_json() const;
};

// The running daemon as the control plane (D-Bus service, sd_notify, admin API) sees it.
//
// Implemented by the run loop (control/daemon.cc), which owns the runtime; the D-Bus service and
// other front ends hold a reference and call it from their own threads. Every method is
// thread-safe. reload() is serialized with SIGHUP: a request made while a reload runs is served by
// the next one, and requests that arrive together share it.
class DaemonApi {
 public:
  virtual ~DaemonApi() = default;
  // Reads, validates and applies the config file; blocks until the reload that serves this request
  // has finished and returns its report.
  virtual ReloadReport reload() = 0;
  // Validates a file exactly as `ingestd validate` would (factories included, no I/O); returns
  // every error, empty when the file is valid.
  virtual std::vector<std::string> validate(const std::string& path) = 0;
  // {"state":..., "version":..., "config_path":..., "components":[...], "last_reload":{...}, ...}
  virtual std::string status_json() = 0;
  // trace|debug|info|warning|error (warn is accepted too); false for an unknown name.
  virtual bool set_log_level(const std::string& level) = 0;
  // starting|running|reloading|stopping
  virtual std::string state() const = 0;
  virtual std::string config_path() const = 0;
  virtual ReloadReport last_reload() const = 0;
  // The live windows of aggregator `component` (Aggregator::inspect()) as a JSON array, one
  // object per group and window: the aggregator's output fields plus "state" ("open"/"closed").
  // Throws NoSuchAggregator when the running pipeline has no such aggregator (or it shows no live
  // state), std::runtime_error when it did not answer in time.
  struct NoSuchAggregator : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
  };
  virtual std::string aggregates_json(const std::string& component,
                                      const Aggregator::InspectQuery& query) = 0;
  // Every metric family now: the counters, the runtime's gauges and histograms, the process.
  virtual std::vector<runtime::Family> metric_families() = 0;
  // For /health: ok while running, unless a sink's breaker has not been closed for longer than
  // admin.unhealthy_after; `reason` says why not (or "running").
  struct Health {
    bool ok = false;
    std::string reason;
  };
  virtual Health health() = 0;
};

}  // namespace ingestd::control
