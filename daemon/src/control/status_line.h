#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace ingestd::control {

// The one-line summary sent as STATUS= (shown by `systemctl status`):
//   "running 4 components; in 1520 ev/s, out 1498 ev/s; last reload ok"
// "in" counts what the sources emitted, "out" what the sinks wrote, both per second since the
// previous update. Not thread-safe: the run loop owns it.
class StatusLine {
 public:
  // `counters`: a Metrics snapshot; `reload`: "none", "ok" or "failed" (or any short word).
  std::string update(const std::string& state, const config::Pipeline& pipeline,
                     const std::vector<std::pair<std::string, uint64_t>>& counters,
                     int64_t monotonic_ns, const std::string& reload);

 private:
  uint64_t last_in_ = 0, last_out_ = 0;
  int64_t last_ns_ = -1;
};

}  // namespace ingestd::control
