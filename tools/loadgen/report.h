// ingestd-loadgen: what it prints at the end of a run.
#pragma once

#include <string>

#include "load.h"

namespace ingestd::loadgen {

// Human-readable, several lines: rates, latency percentiles, answers by status, errors.
std::string format_text(const LoadResult& result);
// One JSON object on one line (no newline) with the same figures, for scripts:
//   {"requests":N,"ok":N,"seconds":S,"requests_per_s":R,"records":N,"records_per_s":R,
//    "bytes":N,"bytes_per_s":R,"raw_bytes":N,"latency_us":{"p50":..,"p90":..,"p99":..,"max":..,
//    "min":..},"statuses":{"202":N,...},"errors":{"connect":N,"io":N,"timeout":N,"protocol":N},
//    "connections_opened":N}
// requests counts every answer (any status); records are those of the requests answered 2xx;
// bytes are the request bodies as sent (compressed with --gzip), raw_bytes the same uncompressed.
std::string format_json(const LoadResult& result);

}  // namespace ingestd::loadgen
