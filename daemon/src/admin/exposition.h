// The metrics as Prometheus scrapes them: text exposition format 0.0.4 and OpenMetrics 1.0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/metrics.h"

namespace ingestd::admin {

enum class Format {
  kText,         // text/plain; version=0.0.4
  kOpenMetrics,  // application/openmetrics-text; version=1.0.0
};

// OpenMetrics when the Accept header names application/openmetrics-text, else the text format
// (as Prometheus negotiates: it lists both, OpenMetrics first, when it can read it).
Format negotiate(std::string_view accept);
std::string_view content_type(Format format);

// The named counters ("<component>.<name>", Metrics::snapshot()) as families with a component
// label. The runtime's well-known counters get families of their own:
//   events_in, events_out          ingestd_component_events_{in,out}_total
//   queue_dropped, shutdown_dropped, unconsumed, spool_dropped
//                                  ingestd_component_dropped_events_total{reason=queue_full|
//                                  shutdown|unconsumed|spool_full}
//   failed, dead_letters, dead_letter_lost, acks_unresolved
//                                  ingestd_component_{failed_events,dead_letters,
//                                  dead_letters_lost,acks_unresolved}_total
//   retries, breaker_*, spooled, replayed, spool_corrupt (sinks)
//                                  ingestd_sink_retries_total, ingestd_sink_breaker_transitions_
//                                  total{to=...}, ingestd_sink_{spooled,replayed}_events_total,
//                                  ingestd_sink_spool_corrupt_records_total
//   requests.<route>.<status> (the HTTP source)
//                                  ingestd_http_source_requests_total{route,status}
// and every other counter a plugin keeps is ingestd_component_stat_total{component,name}.
// Families come out sorted by name; a family with no series is left out.
std::vector<runtime::Family> counter_families(
    const std::vector<std::pair<std::string, uint64_t>>& named);

// The families in `format`: HELP and TYPE for each (families of the same name are merged, the
// first one's HELP and TYPE kept), label values and HELP escaped, histograms as cumulative
// _bucket series ending in le="+Inf", then _sum and _count. OpenMetrics ends with "# EOF".
std::string render(const std::vector<runtime::Family>& families, Format format);

// Label value escaping shared by both formats: \ " and newline.
void append_label_value(std::string& out, std::string_view value);

}  // namespace ingestd::admin
