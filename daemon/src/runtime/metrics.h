#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ingestd/component.h"

namespace ingestd::runtime {

// The registry of named counters ("<component>.<name>"). Counters are created on first use and
// live as long as the registry; references handed out stay valid. Lookup takes a mutex, so
// components look their counters up once, not per event; Counter::add() itself is lock-free.
class Metrics {
 public:
  Counter& counter(std::string_view name);
  std::vector<std::pair<std::string, uint64_t>> snapshot() const;  // sorted by name
  // {"counters": {...}} for --stats-file.
  std::string to_json() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
};

}  // namespace ingestd::runtime
