#include "runtime/metrics.h"

#include "ingestd/json.h"

namespace ingestd::runtime {

Histogram::Histogram(std::vector<int64_t> bounds_ns)
    : bounds_ns_(std::move(bounds_ns)), counts_(new std::atomic<uint64_t>[bounds_ns_.size() + 1]) {
  for (size_t i = 0; i <= bounds_ns_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe_ns(int64_t ns) {
  if (ns < 0) ns = 0;
  size_t i = 0;
  while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds.reserve(bounds_ns_.size());
  for (int64_t b : bounds_ns_) s.bounds.push_back(static_cast<double>(b) / 1e9);
  s.counts.reserve(bounds_ns_.size() + 1);
  for (size_t i = 0; i <= bounds_ns_.size(); ++i)
    s.counts.push_back(counts_[i].load(std::memory_order_relaxed));
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

const std::vector<int64_t>& Histogram::latency_bounds_ns() {
  static const std::vector<int64_t> bounds = {
      10'000,     50'000,      100'000,     500'000,       1'000'000,     5'000'000,     10'000'000,
      50'000'000, 100'000'000, 500'000'000, 1'000'000'000, 5'000'000'000, 10'000'000'000};
  return bounds;
}

Counter& Metrics::counter(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = counters_.find(name);
  if (it == counters_.end())
    it = counters_.emplace(std::string(name), std::make_unique<Counter>()).first;
  return *it->second;
}

std::vector<std::pair<std::string, uint64_t>> Metrics::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  out.reserve(counters_.size());
  for (const auto& [name, c] : counters_) out.emplace_back(name, c->value());
  return out;
}

std::string Metrics::to_json() const {
  std::string out = "{\"counters\": {";
  bool first = true;
  for (const auto& [name, value] : snapshot()) {
    if (!first) out += ", ";
    first = false;
    json::append_string(out, name);
    out += ": ";
    out += std::to_string(value);
  }
  out += "}}\n";
  return out;
}

void Metrics::describe(std::string_view family, MetricType type, std::string_view help) {
  std::lock_guard lock(mu_);
  auto [it, added] = families_.try_emplace(std::string(family));
  it->second.type = type;
  it->second.help = std::string(help);
}

Counter& Metrics::counter(std::string_view family, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto [it, added] = families_.try_emplace(std::string(family));
  if (added) it->second.type = MetricType::kCounter;
  auto& slot = it->second.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& Metrics::histogram(std::string_view family, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto [it, added] = families_.try_emplace(std::string(family));
  if (added) it->second.type = MetricType::kHistogram;
  auto& slot = it->second.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(Histogram::latency_bounds_ns());
  return *slot;
}

int Metrics::add_collector(Collector collector) {
  std::lock_guard lock(collectors_mu_);
  int id = next_collector_++;
  collectors_.emplace(id, std::move(collector));
  return id;
}

void Metrics::remove_collector(int id) {
  std::lock_guard lock(collectors_mu_);
  collectors_.erase(id);
}

std::vector<Family> Metrics::collect() const {
  std::vector<Family> out;
  std::lock_guard collecting(collectors_mu_);
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, d] : families_) {
      if (d.help.empty()) continue;  // never described
      Family& f = out.emplace_back();
      f.name = name;
      f.help = d.help;
      f.type = d.type;
      for (const auto& [labels, c] : d.counters)
        f.samples.push_back({labels, static_cast<double>(c->value()), {}});
      for (const auto& [labels, h] : d.histograms) f.samples.push_back({labels, 0, h->snapshot()});
    }
  }
  for (const auto& [id, c] : collectors_) c(out);
  return out;
}

}  // namespace ingestd::runtime
