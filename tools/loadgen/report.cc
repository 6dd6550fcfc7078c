#include "report.h"

#include <fmt/format.h>

namespace ingestd::loadgen {

namespace {

double per_second(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}

}  // namespace

std::string format_text(const LoadResult& r) {
  const double s = r.seconds;
  std::string out = fmt::format("{} answers ({} 2xx) in {:.3f} s\n", r.answered, r.ok, s);
  out += fmt::format("  requests/s  {:12.1f}\n", per_second(r.answered, s));
  out += fmt::format("  records/s   {:12.1f}  (of 2xx answers)\n", per_second(r.ok_records, s));
  out += fmt::format("  bytes/s     {:12.1f}  (bodies as sent; {:.1f} uncompressed)\n",
                     per_second(r.body_bytes, s), per_second(r.raw_bytes, s));
  const LatencyHistogram& h = r.latency;
  out += fmt::format(
      "  latency     p50 {:.0f} us, p90 {:.0f} us, p99 {:.0f} us, max {:.0f} us"
      "  (within 0.4 %)\n",
      us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)), us(h.max()));
  out += "  status     ";
  bool any = false;
  for (size_t code = 0; code < r.statuses.size(); ++code) {
    if (r.statuses[code] == 0) continue;
    out += fmt::format(" {}: {}", code, r.statuses[code]);
    any = true;
  }
  if (!any) out += " none";
  out += fmt::format("\n  errors      connect {}, io {}, timeout {}, protocol {}\n",
                     r.connect_errors, r.io_errors, r.timeouts, r.protocol_errors);
  return out;
}

std::string format_json(const LoadResult& r) {
  const double s = r.seconds;
  const LatencyHistogram& h = r.latency;
  std::string statuses;
  for (size_t code = 0; code < r.statuses.size(); ++code) {
    if (r.statuses[code] == 0) continue;
    if (!statuses.empty()) statuses += ',';
    statuses += fmt::format("\"{}\":{}", code, r.statuses[code]);
  }
  return fmt::format(
      "{{\"requests\":{},\"ok\":{},\"seconds\":{:.6f},\"requests_per_s\":{:.1f},"
      "\"records\":{},\"records_per_s\":{:.1f},\"bytes\":{},\"bytes_per_s\":{:.1f},"
      "\"raw_bytes\":{},\"latency_us\":{{\"p50\":{:.1f},\"p90\":{:.1f},\"p99\":{:.1f},"
      "\"max\":{:.1f},\"min\":{:.1f}}},\"statuses\":{{{}}},\"errors\":{{\"connect\":{},"
      "\"io\":{},\"timeout\":{},\"protocol\":{}}},\"connections_opened\":{}}}",
      r.answered, r.ok, s, per_second(r.answered, s), r.ok_records, per_second(r.ok_records, s),
      r.body_bytes, per_second(r.body_bytes, s), r.raw_bytes, us(h.percentile(50)),
      us(h.percentile(90)), us(h.percentile(99)), us(h.max()), us(h.min()), statuses,
      r.connect_errors, r.io_errors, r.timeouts, r.protocol_errors, r.connections_opened);
}

}  // namespace ingestd::loadgen
