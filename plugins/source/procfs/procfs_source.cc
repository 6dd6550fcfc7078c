#include "procfs_source.h"

#include <algorithm>
#include <regex>
#include <string>
#include <utility>

namespace ingestd::plugins {

namespace {

constexpr size_t kArenaBytes = 16 * 1024;  // a host event and a few processes

ProcfsSettings settings_from(const Options& options, Diagnostics& diag) {
  ProcfsSettings s;
  s.root = options.get_string("root", "/proc");
  s.host = options.get_bool("host", true);
  if (options.has("pid")) s.pid = options.get_int("pid");
  s.pid_files = options.get_list("pid_file");
  s.match_cmdline = options.get_string("match_on", "comm") == "cmdline";
  if (s.root.empty()) diag.error("root", "must not be empty");
  for (const std::string& file : s.pid_files)
    if (file.empty()) diag.error("pid_file", "must not hold an empty path");
  if (options.has("pattern")) {
    const std::string pattern = options.get_string("pattern");
    if (pattern.empty()) {
      diag.error("pattern", "must not be empty (`.` matches every process)");
    } else {
      try {
        s.pattern.emplace(pattern, std::regex::ECMAScript | std::regex::optimize);
      } catch (const std::regex_error& e) {
        diag.error("pattern", "is not a valid regular expression: " + std::string(e.what()));
      }
    }
  }
  if (!s.host && !s.pid && s.pid_files.empty() && !options.has("pattern"))
    diag.error("host", "nothing to sample: with `host: false`, set `pid`, `pid_file` or `pattern`");
  return s;
}

}  // namespace

ProcfsSource::ProcfsSource(const Options& options, Diagnostics& diag)
    : interval_ns_(options.get_duration_ns("interval", 10'000'000'000)),
      host_(options.get_bool("host", true)),
      reader_(settings_from(options, diag)) {}

bool ProcfsSource::start(Context& ctx) {
  events_ = &ctx.counter("events");
  limits_ = ctx.batch_limits();
  limits_.max_events = std::max<size_t>(limits_.max_events, 1);
  return reader_.open(ctx);
}

void ProcfsSource::run(Context& ctx, Output& out) {
  int64_t next = ctx.clock().monotonic_ns();
  while (!ctx.stopping()) {
    if (!sample(ctx, out)) return;
    next += interval_ns_;
    const int64_t now = ctx.clock().monotonic_ns();
    if (next <= now) next += ((now - next) / interval_ns_ + 1) * interval_ns_;  // overran
    if (ctx.wait_for_stop(next - now)) return;
  }
}

bool ProcfsSource::sample(Context& ctx, Output& out) {
  const int64_t now = ctx.clock().now_ns();
  reader_.select(ctx, pids_);
  BatchPtr batch = new_batch(ctx, now);
  if (host_) reader_.sample_host(ctx, *batch, now);
  for (const int64_t pid : pids_) {
    if (batch->size() >= limits_.max_events) {
      events_->add(batch->size());
      if (!out.push(std::exchange(batch, new_batch(ctx, now)))) return false;
    }
    reader_.sample_process(ctx, pid, *batch, now);
  }
  if (batch->empty()) return true;
  events_->add(batch->size());
  return out.push(std::move(batch));
}

BatchPtr ProcfsSource::new_batch(Context& ctx, int64_t now_ns) const {
  auto batch = std::make_unique<Batch>(kArenaBytes);
  batch->origin.component = std::string(ctx.name());
  batch->ingest_time_ns = now_ns;
  return batch;
}

}  // namespace ingestd::plugins
