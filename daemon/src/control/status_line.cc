#include "control/status_line.h"

#include <fmt/format.h>

namespace ingestd::control {

std::string StatusLine::update(const std::string& state, const config::Pipeline& pipeline,
                               const std::vector<std::pair<std::string, uint64_t>>& counters,
                               int64_t monotonic_ns, const std::string& reload) {
  auto value = [&](const std::string& name) -> uint64_t {
    for (const auto& [n, v] : counters)
      if (n == name) return v;
    return 0;
  };
  uint64_t in = 0, out = 0;
  for (const auto& c : pipeline.components) {
    if (c.kind == Kind::kSource) in += value(c.name + ".events_out");
    if (c.kind == Kind::kSink) out += value(c.name + ".events_out");
  }
  double in_rate = 0, out_rate = 0;
  // Counters restart with a replaced component: no rate for that interval rather than a wrap.
  if (last_ns_ >= 0 && monotonic_ns > last_ns_ && in >= last_in_ && out >= last_out_) {
    double seconds = static_cast<double>(monotonic_ns - last_ns_) / 1e9;
    in_rate = static_cast<double>(in - last_in_) / seconds;
    out_rate = static_cast<double>(out - last_out_) / seconds;
  }
  last_in_ = in;
  last_out_ = out;
  last_ns_ = monotonic_ns;
  return fmt::format("{} {} components; in {:.0f} ev/s, out {:.0f} ev/s; last reload {}", state,
                     pipeline.components.size(), in_rate, out_rate, reload);
}

}  // namespace ingestd::control
