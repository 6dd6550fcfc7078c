// The process's own gauges from /proc/self, named as Prometheus client libraries name them.
#pragma once

#include <vector>

#include "runtime/metrics.h"

namespace ingestd::admin {

// Appends process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_threads and
// process_start_time_seconds. A value /proc does not give is left out, never guessed.
void append_process_families(std::vector<runtime::Family>& out);

}  // namespace ingestd::admin
