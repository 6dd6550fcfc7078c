#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ingestd/component.h"

namespace ingestd::runtime {

// (name, value) pairs in the order they are exported; names are Prometheus label names.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { kCounter, kGauge, kHistogram };

// A distribution of durations in fixed buckets, for one series (e.g. one component's batch
// latency). observe() is lock-free (relaxed atomics: a reader may see a count without its sum,
// never a torn value) and costs a clock-free linear scan of the bounds: call it per batch.
class Histogram {
 public:
  // Upper bounds in ns, ascending; an implicit +Inf bucket follows.
  explicit Histogram(std::vector<int64_t> bounds_ns);
  void observe_ns(int64_t ns);

  struct Snapshot {
    std::vector<double> bounds;    // seconds
    std::vector<uint64_t> counts;  // per bucket (not cumulative), bounds.size() + 1 of them
    double sum = 0;                // seconds
  };
  Snapshot snapshot() const;

  // Batch-processing latency: 10 us .. 10 s.
  static const std::vector<int64_t>& latency_bounds_ns();

 private:
  const std::vector<int64_t> bounds_ns_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> sum_ns_{0};
};

// One exported series of a family: labels and a value (counters, gauges) or a distribution.
struct Sample {
  Labels labels;
  double value = 0;
  Histogram::Snapshot histogram;  // kHistogram only
};

// A metric family as the admin server exports it. `name` carries no `_total` suffix: the text
// formats add it to counters' samples (and 0.0.4 to the TYPE line), as each format wants.
struct Family {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;
};

// The daemon's metrics.
//
// Named counters ("<component>.<name>") are what components and the core count through
// Context::counter(); they are what --stats-file and the final summary show, and the admin
// server exports them with a component label (admin/exposition.h says how).
// Labelled series (counter(family, labels), histogram(family, labels)) are the core's own
// measurements that only the admin server exports (bytes and batches per component, batch
// latency): they stay out of the stats file and the summary.
// Gauges are not stored: whoever knows a value now (queue depth, breaker state, process RSS)
// adds it when the families are collected (add_collector()).
//
// Every object handed out lives as long as the registry and its reference stays valid; lookups
// take a mutex, so callers look up once and keep the reference; Counter::add() and
// Histogram::observe_ns() are lock-free. Thread-safe.
class Metrics {
 public:
  Counter& counter(std::string_view name);
  std::vector<std::pair<std::string, uint64_t>> snapshot() const;  // sorted by name
  // {"counters": {...}} for --stats-file.
  std::string to_json() const;

  // A labelled counter of family `family` (declared with describe()).
  Counter& counter(std::string_view family, const Labels& labels);
  // A labelled histogram with Histogram::latency_bounds_ns().
  Histogram& histogram(std::string_view family, const Labels& labels);
  // The HELP text and type of a labelled family; families never described are not exported.
  void describe(std::string_view family, MetricType type, std::string_view help);

  // Appends families computed at collection time (gauges). Called by collect() on the thread
  // that collects, under no lock but the collectors' own (a collector may use the registry);
  // it must be thread-safe. Returns an id for remove_collector(), which waits for a collection
  // under way to end, so that what the collector uses may go right after it.
  using Collector = std::function<void(std::vector<Family>&)>;
  int add_collector(Collector collector);
  void remove_collector(int id);

  // The labelled families (counters, histograms), then the collectors' families. Named counters
  // are not included: see snapshot().
  std::vector<Family> collect() const;

 private:
  struct Described {
    MetricType type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
  std::map<std::string, Described, std::less<>> families_;
  mutable std::mutex collectors_mu_;     // taken before mu_, never after
  std::map<int, Collector> collectors_;  // under collectors_mu_
  int next_collector_ = 1;
};

}  // namespace ingestd::runtime
