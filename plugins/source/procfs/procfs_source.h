// source/procfs: samples processes and the host from /proc every interval.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/schema.h"
#include "procfs_reader.h"

namespace ingestd::plugins {

inline constexpr const char* kProcfsSourceDoc =
    "Samples processes (by pid, pid file or a pattern on their name or command line) and the "
    "host (CPU, memory, load, network counters, pressure) from /proc every interval: one event "
    "per process and one for the host, with a `kind` field.";

inline constexpr OptionSpec kProcfsSourceOptions[] = {
    {.name = "interval",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "10ms",
     .max = "24h",
     .doc = "How often to sample. The first sample is taken at start."},
    {.name = "host",
     .type = OptionType::kBool,
     .default_value = "true",
     .doc = "Emit an event for the host (`kind: host`) every interval."},
    {.name = "pid",
     .type = OptionType::kInt,
     .min = "1",
     .doc = "A process to sample, by its pid. Counted in `missing` while it does not exist."},
    {.name = "pid_file",
     .type = OptionType::kStringList,
     .doc = "Files holding the pid of a process to sample (such as /run/nginx.pid), read again "
            "every interval so that a restarted process is followed. Counted in `missing` while "
            "a file cannot be read or names no running process."},
    {.name = "pattern",
     .type = OptionType::kString,
     .doc = "A regular expression (ECMAScript): every process whose name (`match_on: comm`) or "
            "command line (`match_on: cmdline`, its arguments joined by spaces) contains a match "
            "is sampled. Anchor it (`^nginx$`) to match a whole name."},
    {.name = "match_on",
     .type = OptionType::kEnum,
     .default_value = "comm",
     .choices = "comm|cmdline",
     .doc = "What `pattern` is searched in: `comm`, the process name as `/proc/<pid>/comm` has it "
            "(at most 15 characters, like `pgrep`); `cmdline`, the whole command line (like "
            "`pgrep -f`)."},
    {.name = "root",
     .type = OptionType::kString,
     .default_value = "/proc",
     .doc = "Where procfs is mounted (a container's /host/proc, or a copy of a /proc tree)."},
};

// Samples processes and the host every `interval` and emits one event per sample.
//
// run() takes a sample at once and then every interval on the monotonic clock, pacing itself
// with ctx.wait_for_stop(), so it returns promptly at stop (a sample under way is finished first:
// every sample is whole); a sample that takes longer than an interval skips the ticks it overran
// instead of sampling back to back. A sample selects the processes (ProcfsReader::select()), then
// emits the host's event and one per process, all with the wall-clock time at which the sample
// began, in batches of at most max_events. The events have fields and no raw bytes (a sink writes
// them as JSON); they carry no acknowledgement, as a lost sample is not taken again.
//
// Counters: events, and the reader's vanished, unreadable, malformed, missing (see
// ProcfsReader). Failure modes: start() fails when `root` cannot be opened; everything after is
// counted, not fatal. Threading: start() and run() on the source's thread only.
class ProcfsSource final : public Source {
 public:
  ProcfsSource(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

 private:
  // One sample; false when the pipeline refused a batch (stopping).
  bool sample(Context& ctx, Output& out);
  BatchPtr new_batch(Context& ctx, int64_t now_ns) const;

  int64_t interval_ns_;
  bool host_;
  ProcfsReader reader_;
  BatchLimits limits_;
  std::vector<int64_t> pids_;
  Counter* events_ = nullptr;
};

}  // namespace ingestd::plugins
