#include "generator_source.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace ingestd::plugins {

namespace {

constexpr int64_t kMinWaitNs = 1'000;
constexpr int64_t kMaxWaitNs = 60'000'000'000;
constexpr size_t kArenaSlack = 256;

}  // namespace

GeneratorSource::GeneratorSource(const Options& options, Diagnostics& diag)
    : rate_(options.get_double("rate", 0)),
      count_(static_cast<uint64_t>(std::max<int64_t>(options.get_int("count", 0), 0))),
      rng_(static_cast<uint64_t>(options.get_int("seed", 1))) {
  std::string error;
  if (!template_.compile(options.get_string("template"), error)) diag.error("template", error);
  if (!(rate_ >= 0) || !std::isfinite(rate_)) diag.error("rate", "must be a finite number >= 0");
  line_estimate_ = template_.literal_size() + 32;
}

bool GeneratorSource::start(Context& ctx) {
  events_ = &ctx.counter("events");
  limits_ = ctx.batch_limits();
  limits_.max_events = std::max<size_t>(limits_.max_events, 1);
  limits_.max_bytes = std::max<size_t>(limits_.max_bytes, 1);
  return true;
}

void GeneratorSource::run(Context& ctx, Output& out) {
  const int64_t begin = ctx.clock().monotonic_ns();
  while (!ctx.stopping()) {
    const uint64_t left = count_ != 0 ? count_ - seq_ : std::numeric_limits<uint64_t>::max();
    if (left == 0) return;
    uint64_t n = std::min<uint64_t>(limits_.max_events, left);
    if (rate_ > 0) {
      const int64_t elapsed = ctx.clock().monotonic_ns() - begin;
      // Event k is due at k / rate s; products first, so that whole numbers stay exact.
      const auto due =
          static_cast<uint64_t>(std::floor(static_cast<double>(elapsed) * rate_ / 1e9)) + 1;
      if (due <= seq_) {
        const double next_due = std::ceil(static_cast<double>(seq_) * 1e9 / rate_);
        const auto until_next =
            static_cast<int64_t>(std::min(next_due - static_cast<double>(elapsed), 1e18));
        const int64_t wait =
            std::clamp(std::max(limits_.linger_ns, until_next), kMinWaitNs, kMaxWaitNs);
        if (ctx.wait_for_stop(wait)) return;
        continue;
      }
      n = std::min(n, due - seq_);
    }
    BatchPtr batch = make_batch(ctx, n);
    const size_t made = batch->size();
    const bool accepted = out.push(std::move(batch));
    events_->add(made);
    if (!accepted) return;
  }
}

// Renders up to n events (fewer when the batch reaches max_bytes first).
BatchPtr GeneratorSource::make_batch(Context& ctx, uint64_t n) {
  const size_t estimate = std::min<size_t>(n * (line_estimate_ + Batch::kPadding),
                                           limits_.max_bytes + line_estimate_ + Batch::kPadding);
  auto batch = std::make_unique<Batch>(estimate + kArenaSlack);
  const int64_t now = ctx.clock().now_ns();
  batch->ingest_time_ns = now;
  batch->origin.component = std::string(ctx.name());
  for (uint64_t i = 0; i < n && batch->raw_bytes() < limits_.max_bytes; ++i) {
    line_.clear();
    template_.render(line_, rng_, seq_++, now);
    batch->add(batch->copy(line_), now);
  }
  line_estimate_ = std::max(line_estimate_, line_.size());
  return batch;
}

}  // namespace ingestd::plugins
