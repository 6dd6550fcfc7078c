#include "runtime/metrics.h"

#include "ingestd/json.h"

namespace ingestd::runtime {

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

}  // namespace ingestd::runtime
