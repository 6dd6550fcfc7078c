#include "window_aggregator.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include <absl/strings/string_view.h>
#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr int64_t kMaxTime = std::numeric_limits<int64_t>::max();
constexpr char kKeySeparator = '\x1f';  // in stream keys
constexpr char kKeyEscape = '\x01';
constexpr int64_t kResaveNs = 1'000'000'000;
// Event time: a stream (a partition) that delivered nothing for this long (or idle_timeout, when
// set) stops holding the watermark back; one silent for kStreamForgetNs is forgotten.
constexpr int64_t kStreamIdleNs = 5'000'000'000;
constexpr int64_t kStreamForgetNs = 3600'000'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// "count", "first_seen", "last_seen", "<function>(<field>)" with function sum, min, max, avg,
// distinct, approx_distinct, p50, p90, p95, p99, p999, first or last, or "percentile(<field>, q)"
// with 0 < q <= 100. A percentile's quantile (q / 100) goes to `quantile`.
template <class Kind>
bool parse_metric(std::string_view spec, Kind& kind, std::string& field, double& quantile) {
  spec = trim(spec);
  if (spec == "count" || spec == "first_seen" || spec == "last_seen") {
    kind = spec == "count"        ? Kind::kCount
           : spec == "first_seen" ? Kind::kFirstSeen
                                  : Kind::kLastSeen;
    return true;
  }
  size_t open = spec.find('(');
  if (open == std::string_view::npos || spec.back() != ')') return false;
  std::string_view function = trim(spec.substr(0, open));
  std::string_view argument = trim(spec.substr(open + 1, spec.size() - open - 2));
  if (function == "percentile") {
    const size_t comma = argument.find(',');
    if (comma == std::string_view::npos) return false;
    const std::string_view q = trim(argument.substr(comma + 1));
    argument = trim(argument.substr(0, comma));
    double percent = 0;
    const auto [end, ec] = std::from_chars(q.data(), q.data() + q.size(), percent);
    if (ec != std::errc() || end != q.data() + q.size() || !(percent > 0 && percent <= 100))
      return false;
    kind = Kind::kPercentile;
    quantile = percent / 100;
  }
  if (argument.empty() || argument.find_first_of("() ") != std::string_view::npos) return false;
  static constexpr std::pair<std::string_view, double> kNamed[] = {
      {"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p999", 0.999}};
  const auto named = std::find_if(std::begin(kNamed), std::end(kNamed),
                                  [function](const auto& p) { return p.first == function; });
  if (function == "percentile") {
    // parsed above
  } else if (named != std::end(kNamed)) {
    kind = Kind::kPercentile;
    quantile = named->second;
  } else if (function == "sum") {
    kind = Kind::kSum;
  } else if (function == "min") {
    kind = Kind::kMin;
  } else if (function == "max") {
    kind = Kind::kMax;
  } else if (function == "avg") {
    kind = Kind::kAvg;
  } else if (function == "distinct") {
    kind = Kind::kDistinct;
  } else if (function == "approx_distinct") {
    kind = Kind::kApproxDistinct;
  } else if (function == "first") {
    kind = Kind::kFirst;
  } else if (function == "last") {
    kind = Kind::kLast;
  } else {
    return false;
  }
  field = argument;
  return true;
}

// "2018-01-08T21:02:34.000Z" for a time in ns since the epoch (rounded down to the millisecond).
std::string_view format_time(int64_t ns, char (&buf)[48]) {
  using namespace std::chrono;
  auto ms = floor<milliseconds>(sys_time<nanoseconds>(nanoseconds(ns)));
  auto day = floor<days>(ms);
  year_month_day date{day};
  hh_mm_ss<milliseconds> time{ms - day};
  auto r = fmt::format_to_n(
      buf, sizeof buf, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(date.year()),
      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), time.hours().count(),
      time.minutes().count(), time.seconds().count(), time.subseconds().count());
  return {buf, std::min(r.size, sizeof buf)};
}

// a / b rounded toward negative infinity (b > 0).
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b < 0) --q;
  return q;
}

// Adds n to an overflow counter, with a warning the first time.
template <class... Args>
void count_warned(Context& ctx, Counter& counter, uint64_t n, fmt::format_string<Args...> warning,
                  Args&&... args) {
  if (counter.value() == 0)
    ctx.log(LogLevel::kWarn, fmt::format(warning, std::forward<Args>(args)...));
  counter.add(n);
}

}  // namespace

WindowAggregator::WindowAggregator(const Options& options, Diagnostics& diag)
    : watermark_(kMinTime), closed_until_(kMinTime) {
  const OptionValue& window = options.get_object("window");
  size_ns_ = window.get_duration_ns("size", 0);
  if (size_ns_ < 1'000'000) {
    diag.error("window.size", "must be at least 1ms");
    size_ns_ = 1'000'000'000;
  }
  std::string time = window.get_string("time", "processing");
  if (time == "event") {
    event_time_ = true;
  } else if (time != "processing") {
    diag.error("window.time", fmt::format("unknown time '{}': expected processing or event", time));
  }
  hop_ns_ = window.get_duration_ns("hop", 0);
  if (hop_ns_ == 0) hop_ns_ = size_ns_;
  if (hop_ns_ < 1'000'000 || hop_ns_ > size_ns_ || size_ns_ % hop_ns_ != 0 ||
      size_ns_ / hop_ns_ > kMaxHops) {
    diag.error("window.hop", fmt::format("must divide window.size into at most {} hops of 1ms "
                                         "or more",
                                         kMaxHops));
    hop_ns_ = size_ns_;
  }
  holding_.resize(static_cast<size_t>(size_ns_ / hop_ns_));
  lateness_ns_ = window.get_duration_ns("allowed_lateness", 0);
  idle_timeout_ns_ = window.get_duration_ns("idle_timeout", 0);
  if (lateness_ns_ < 0) {
    diag.error("window.allowed_lateness", "must not be negative");
    lateness_ns_ = 0;
  }
  max_future_ns_ = std::max<int64_t>(0, window.get_duration_ns("max_future", 300'000'000'000));
  auto policy = [](const std::string& name) {
    return name == "dead_letter" ? Policy::kDeadLetter
           : name == "drop"      ? Policy::kDrop
           : name == "route"     ? Policy::kRoute
                                 : Policy::kKeep;
  };
  late_policy_ = policy(window.get_string("late", "drop"));
  future_policy_ = policy(window.get_string("future", "keep"));

  for (const auto& [field, value] : options.get_object("where").entries)
    where_.push_back({field, value.list});

  const OptionValue& output = options.get_object("output");
  start_field_ = output.get_string("start", "window_start");
  end_field_ = output.get_string("end", "window_end");
  const std::string format = output.get_string("time_format", "rfc3339");
  time_format_ = format == "s"    ? TimeFormat::kSeconds
                 : format == "ms" ? TimeFormat::kMillis
                                  : TimeFormat::kRfc3339;
  if (start_field_.empty()) diag.error("output.start", "must not be empty");
  if (start_field_ == end_field_) diag.error("output.end", "must differ from output.start");
  auto is_window_field = [this](const std::string& name) {
    return name == start_field_ || (!end_field_.empty() && name == end_field_);
  };

  group_by_ = options.get_list("group_by");
  for (const std::string& field : group_by_)
    if (is_window_field(field))
      diag.error("group_by", fmt::format("'{}' is the name of an output field", field));

  const OptionValue* metrics = options.find("metrics");
  if (!metrics) metrics_.push_back({"count", MetricKind::kCount, {}});
  static const decltype(OptionValue::entries) kNoMetrics;
  for (const auto& [name, value] : metrics ? metrics->entries : kNoMetrics) {
    std::string option = "metrics." + name;
    Metric metric{name, MetricKind::kCount, {}};
    if (value.list.size() != 1) {
      diag.error(option, "expected one metric, not a list");
      continue;
    }
    if (!parse_metric(value.list.front(), metric.kind, metric.field, metric.quantile)) {
      diag.error(option, fmt::format("unknown metric '{}': expected count, sum(f), min(f), "
                                     "max(f), avg(f), distinct(f), approx_distinct(f), p50(f), "
                                     "p90(f), p95(f), p99(f), p999(f), percentile(f, q) with "
                                     "0 < q <= 100, first_seen, last_seen, first(f) or last(f)",
                                     value.list.front()));
      continue;
    }
    if (is_window_field(name) ||
        std::find(group_by_.begin(), group_by_.end(), name) != group_by_.end()) {
      diag.error(option, fmt::format("the name '{}' is already an output field", name));
      continue;
    }
    metrics_.push_back(std::move(metric));
  }
  checkpoint_ = options.get_bool("checkpoint", false);
  max_groups_ = static_cast<size_t>(options.get_int("max_groups", 1'000'000));
  max_distinct_ = static_cast<size_t>(std::max<int64_t>(
      1, options.get_int("max_distinct", static_cast<int64_t>(kDefaultMaxDistinct))));
  const int64_t precision = options.get_int("hll_precision", HyperLogLog::kDefaultPrecision);
  if (HyperLogLog::valid_precision(static_cast<int>(precision)) &&
      precision == static_cast<int>(precision)) {
    hll_precision_ = static_cast<int>(precision);
  } else {
    diag.error("hll_precision", fmt::format("must be from {} to {}", HyperLogLog::kMinPrecision,
                                            HyperLogLog::kMaxPrecision));
  }
  const double accuracy = options.get_double("percentile_accuracy", DDSketch::kDefaultAlpha);
  if (DDSketch::valid_alpha(accuracy)) {
    percentile_accuracy_ = accuracy;
  } else {
    diag.error("percentile_accuracy",
               fmt::format("must be from {} to {}", DDSketch::kMinAlpha, DDSketch::kMaxAlpha));
  }
  for (const Filter& filter : where_) where_slots_.push_back(slots_.add(filter.field));
  for (const std::string& field : group_by_) group_slots_.push_back(slots_.add(field));
  for (const Metric& metric : metrics_)
    metric_slots_.push_back(metric.field.empty() ? SIZE_MAX : slots_.add(metric.field));
}

bool WindowAggregator::start(Context& ctx) {
  bind_counters(ctx);
  if (checkpoint_) return load_checkpoint(ctx);
  if (event_time_) load_watermark(ctx);
  return true;
}

void WindowAggregator::bind_counters(Context& ctx) {
  filtered_ = &ctx.counter("filtered");
  late_ = &ctx.counter("late");
  late_routed_ = &ctx.counter("late_routed");
  future_ = &ctx.counter("future");
  groups_overflow_ = &ctx.counter("groups_overflow");
  distinct_overflow_ = &ctx.counter("distinct_overflow");
  non_numeric_ = &ctx.counter("non_numeric");
  windows_emitted_ = &ctx.counter("windows");
  left_for_replay_ = &ctx.counter("left_for_replay");
  acks_unresolved_ = &ctx.counter("acks_unresolved");
  if (checkpoint_) {
    checkpoints_ = &ctx.counter("checkpoints");
    checkpoint_errors_ = &ctx.counter("checkpoint_errors");
    replay_skipped_ = &ctx.counter("replay_skipped");
  }
}

void WindowAggregator::route_late(Context& ctx, const Batch& batch) {
  // A copy of the late events only (as Batch::clone() copies all), with the batch's acks shared:
  // one more holder each.
  auto routed = std::make_unique<Batch>();
  routed->origin = batch.origin;
  routed->ingest_time_ns = batch.ingest_time_ns;
  routed->acks.reserve(batch.acks.size());
  for (const AckRef& ack : batch.acks) routed->acks.push_back(ack.share());
  const std::span<const Event> events = batch.events();
  for (size_t k : late_events_) {
    const Event& e = events[k];
    Event& c = routed->add(routed->copy(e.raw), e.time_ns);
    for (const Field& f : batch.fields(e)) {
      Value v = f.value;
      if (v.type == Value::Type::kString || v.type == Value::Type::kRaw)
        v.s = routed->copy_unpadded(v.s);
      routed->append_field(c, routed->copy_unpadded(f.key), v);
    }
  }
  late_events_.clear();
  late_routed_->add(routed->size());
  if (Output* out = ctx.side_output("late")) {
    out->push(std::move(routed));  // refused when stopping: the core counts it and fails its acks
    return;
  }
  // Only without the core's wiring (the config requires a reader of `late`): nowhere to go.
  ctx.log(LogLevel::kError, "late: route, but this component has no `late` output");
  routed->resolve_acks(false);
}

int64_t WindowAggregator::window_start(int64_t t) const {
  return floor_div(t, hop_ns_) * hop_ns_;
}

int64_t WindowAggregator::window_end(int64_t start) const {
  return start > kMaxTime - size_ns_ ? kMaxTime : start + size_ns_;
}

void WindowAggregator::consume(Context& ctx, Batch& batch) {
  if (!filtered_) bind_counters(ctx);
  uint64_t filtered = 0, late = 0, future = 0, overflow = 0;
  bool lost = false;  // a record the dead-letter file could not take
  const int64_t wall = ctx.clock().now_ns();
  const int64_t now = event_time_ ? 0 : std::max(wall, closed_until_);
  // Event time: no stream's newest time goes past this.
  const int64_t horizon =
      max_future_ns_ > 0 && wall < kMaxTime - max_future_ns_ ? wall + max_future_ns_ : kMaxTime;
  const size_t skip = checkpoint_ ? covered_prefix(ctx, batch) : 0;
  const std::span<const Event> events = batch.events();
  // Event time: the watermark is the lowest of the streams' newest times, this batch's stream
  // raising its own as the events go.
  Stream* stream = nullptr;
  int64_t others = kMaxTime;
  if (event_time_) stream = &stream_of(batch.origin, wall, others);
  // The windows holding the last event's time, newest first, while the next events share them.
  int64_t cached_latest = 0, cached_watermark = 0;
  size_t cached = 0;
  bool known_latest = false;  // cached_latest holds the last event's newest window
  for (size_t k = skip; k < events.size(); ++k) {
    const Event& event = events[k];
    slots_.find(batch, event, found_);
    if (!passes()) {
      ++filtered;
      continue;
    }
    int64_t t = event_time_ ? event.time_ns : now;
    // The newest window holding t: the last event's while t is within its hop (which saves a
    // division per event).
    const int64_t latest = known_latest && t >= cached_latest &&
                                   static_cast<uint64_t>(t) - static_cast<uint64_t>(cached_latest) <
                                       static_cast<uint64_t>(hop_ns_)
                               ? cached_latest
                               : window_start(t);
    if (event_time_) {
      if (t > horizon) {
        ++future;
        if (future_policy_ != Policy::kKeep) {
          if (future_policy_ == Policy::kDeadLetter)
            lost |= !ctx.dead_letter(
                event.raw, fmt::format("event time {} ns is more than max_future ({} ns) ahead of "
                                       "the clock ({} ns)",
                                       t, max_future_ns_, wall));
          continue;
        }
      }
      if (window_end(latest) <= watermark_) {  // and so every older one
        ++late;
        if (late_policy_ == Policy::kDeadLetter)
          lost |= !ctx.dead_letter(
              event.raw, fmt::format("late: event time {} ns is in a window closed by the "
                                     "watermark ({} ns)",
                                     t, watermark_));
        else if (late_policy_ == Policy::kRoute)
          late_events_.push_back(k);
        continue;
      }
      if (t <= horizon) stream->newest = std::max(stream->newest, t);  // not an offender's time
      const int64_t low = std::min(others, stream->newest);
      const int64_t mark = low < kMinTime + lateness_ns_ ? kMinTime : low - lateness_ns_;
      watermark_ = std::max(watermark_, mark);
    }
    // (Tumbling: the watermark cannot close the one window unseen, the late check above covers
    // it; hopping: it may have closed the oldest.)
    if (cached == 0 || latest != cached_latest ||
        (hop_ns_ != size_ns_ && watermark_ != cached_watermark)) {
      // Hopping: the windows starting at latest, latest - hop, ... after t - size; in event time
      // only those the watermark has not closed (an event late for the oldest still counts in
      // the newer ones).
      cached = 0;
      cached_latest = latest;
      known_latest = true;
      cached_watermark = watermark_;
      const int64_t before = t < kMinTime + size_ns_ ? kMinTime : t - size_ns_;
      for (int64_t start = latest; start > before && cached < holding_.size(); start -= hop_ns_) {
        if (event_time_ && window_end(start) <= watermark_) break;
        Window* w = &windows_[start];
        holding_[cached++] = w;
        if (std::find(reached_.begin(), reached_.end(), w) == reached_.end()) reached_.push_back(w);
        if (start < kMinTime + hop_ns_) break;
      }
    }
    make_key();
    for (size_t i = 0; i < cached; ++i)
      if (!add(*holding_[i], t)) ++overflow;
  }
  if (event_time_ && idle_timeout_ns_ > 0) {
    last_arrival_ns_ = ctx.clock().now_ns();
    arrival_watermark_ = watermark_;
  }
  if (!late_events_.empty()) route_late(ctx, batch);
  // Every window the batch reached holds its acks: the source hears back once all are written.
  if (lost) batch.resolve_acks(false);  // a record neither counted nor set aside
  if (reached_.empty()) {
    for (AckRef& ack : batch.acks) ack.ok();  // filtered, late or counted before: not lost
  } else {
    for (size_t w = 0; w + 1 < reached_.size(); ++w)
      for (const AckRef& ack : batch.acks) hold(*reached_[w], ack.share());
    for (AckRef& ack : batch.acks) hold(*reached_.back(), std::move(ack));
  }
  batch.acks.clear();
  reached_.clear();

  if (filtered) filtered_->add(filtered);
  if (late) late_->add(late);
  if (future) future_->add(future);
  if (overflow)
    count_warned(ctx, *groups_overflow_, overflow,
                 "a window reached max_groups ({}): events of new groups are dropped and counted "
                 "in groups_overflow",
                 max_groups_);
  if (pending_non_numeric_) non_numeric_->add(std::exchange(pending_non_numeric_, 0));
  if (pending_distinct_overflow_)
    count_warned(ctx, *distinct_overflow_, std::exchange(pending_distinct_overflow_, 0),
                 "a distinct(f) passed max_distinct ({} values in one group): from now on it is "
                 "estimated, counted in distinct_overflow",
                 max_distinct_);
}

bool WindowAggregator::add(Window& window, int64_t t) {
  Group* group = group_for(window);
  if (!group) return false;
  ++group->count;
  group->first_ns = std::min(group->first_ns, t);
  group->last_ns = std::max(group->last_ns, t);
  for (size_t m = 0; m < metrics_.size(); ++m)
    if (metric_slots_[m] != SIZE_MAX)
      accumulate(group->metrics[m], metrics_[m], found_[metric_slots_[m]], t);
  return true;
}

WindowAggregator::Stream& WindowAggregator::stream_of(const Origin& origin, int64_t now,
                                                      int64_t& others) {
  stream_key_ = origin.component;
  if (origin.topic) {
    stream_key_ += kKeySeparator;
    stream_key_ += *origin.topic;
  }
  if (origin.partition) {
    stream_key_ += kKeySeparator;
    stream_key_ += std::to_string(*origin.partition);
  }
  if (origin.workers > 1) {
    // Each parser worker is a stream: they deliver out of order between them. A new one's
    // siblings hold the watermark where it is until they deliver (or go idle): their first
    // batches may be earlier than its.
    stream_key_ += kKeySeparator;
    stream_key_ += origin.parser;
    stream_key_ += kKeySeparator;
    const size_t base = stream_key_.size();
    stream_key_ += std::to_string(origin.worker);
    if (!streams_.contains(stream_key_)) {
      for (uint32_t w = 0; w < origin.workers; ++w) {
        stream_key_.resize(base);
        stream_key_ += std::to_string(w);
        streams_.try_emplace(stream_key_, Stream{.seen_ns = now, .worker = true});
      }
    }
    stream_key_.resize(base);
    stream_key_ += std::to_string(origin.worker);
  }
  const int64_t idle = idle_timeout_ns_ > 0 ? idle_timeout_ns_ : kStreamIdleNs;
  Stream* self = nullptr;
  for (auto it = streams_.begin(); it != streams_.end();) {
    Stream& s = it->second;
    if (it->first == stream_key_) {
      self = &s;
    } else if (now - s.seen_ns > kStreamForgetNs) {
      streams_.erase(it++);  // a partition long gone (revoked, or the topic shrank)
      continue;
    } else if (now - s.seen_ns <= idle && (s.newest != kMinTime || s.worker)) {
      others = std::min(others, s.newest);
    }
    ++it;
  }
  if (!self) self = &streams_[stream_key_];
  self->seen_ns = now;
  self->worker = false;  // delivering: it holds by its times from now on
  return *self;
}

// The watermark rule of consume() at a later time: streams that have not delivered within the
// idle time stop holding it now, not only once another batch arrives. Without this, the parser
// workers of a stream that pauses keep the last windows open: the worker whose last batch was the
// older holds the watermark at that batch's time until the stream resumes.
void WindowAggregator::release_quiet_streams(int64_t now) {
  const int64_t idle = idle_timeout_ns_ > 0 ? idle_timeout_ns_ : kStreamIdleNs;
  int64_t low = kMaxTime;
  for (const auto& [_, s] : streams_)
    if (now - s.seen_ns <= idle && (s.newest != kMinTime || s.worker))
      low = std::min(low, s.newest);
  if (low == kMaxTime || low == kMinTime) return;  // none active, or one not yet delivered
  watermark_ = std::max(watermark_, low < kMinTime + lateness_ns_ ? kMinTime : low - lateness_ns_);
}

void WindowAggregator::hold(Window& window, AckRef ack) {
  std::vector<AckRef>& acks = window.acks;
  acks.push_back(std::move(ack));
  if (acks.size() < kMaxAcks) return;
  const bool replayable =
      std::all_of(acks.begin(), acks.end(), [](const AckRef& a) { return a.replayable(); });
  if (auto folded = window.folded.lock(); folded && replayable == window.folded_replayable) {
    // acks.front() is the fold (it holds while its refs live): add the others to it.
    std::move(acks.begin() + 1, acks.end(), std::back_inserter(*folded));
    acks.erase(acks.begin() + 1, acks.end());
    return;
  }
  auto folded = std::make_shared<std::vector<AckRef>>(std::make_move_iterator(acks.begin()),
                                                      std::make_move_iterator(acks.end()));
  acks.clear();
  acks.push_back(AckRef::make(
      [folded](bool ok) {
        for (AckRef& a : *folded) a.resolve(ok);
      },
      replayable ? AckRef::Replay::kYes : AckRef::Replay::kNo));
  acks.front().attribute(acks_unresolved_);
  window.folded = folded;
  window.folded_replayable = replayable;
}

bool WindowAggregator::passes() const {
  for (size_t f = 0; f < where_.size(); ++f) {
    const Filter& filter = where_[f];
    const Value* v = found_[where_slots_[f]];
    if (!v) return false;
    if (std::none_of(filter.values.begin(), filter.values.end(),
                     [v](const std::string& want) { return v->text_equals(want); }))
      return false;
  }
  return true;
}

namespace {

// Whether `s` holds a byte the group key escapes (0x00 or 0x01). Up to 16 bytes in two
// overlapping loads (never past its end), as same_text() compares: no loop on the length.
bool has_key_escapes(std::string_view s) {
  static_assert(kKeyEscape == '\x01', "the escaped bytes are those below 0x02");
  // A byte's high bit is set for a byte below 0x02 among those of x (exact as to whether any is).
  auto below_two = [](auto x) {
    using Word = decltype(x);
    constexpr Word kOnes = static_cast<Word>(0x0101010101010101);
    return ((x - 2 * kOnes) & ~x & (kOnes * 0x80)) != 0;
  };
  auto word = [](const char* p, auto zero) {
    decltype(zero) x;
    std::memcpy(&x, p, sizeof x);
    return x;
  };
  const char* p = s.data();
  const size_t n = s.size();
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 < n; i += 8)
      if (below_two(word(p + i, uint64_t{}))) return true;
    return below_two(word(p + n - 8, uint64_t{}));
  }
  if (n >= 4) return below_two(word(p, uint32_t{})) || below_two(word(p + n - 4, uint32_t{}));
  for (size_t i = 0; i < n; ++i)
    if (static_cast<unsigned char>(p[i]) < 2) return true;
  return false;
}

}  // namespace

void WindowAggregator::make_key() {
  parts_.resize(group_by_.size());
  key_.clear();
  // The common case, every part a string without a byte to escape: the key sized once and each
  // text copied in, as append_key_part() writes them (text, 0x00, 's'). The parts are made only
  // when a new group needs them (group_for).
  size_t size = 0;
  for (size_t i = 0; i < group_by_.size(); ++i) {
    const Value* v = found_[group_slots_[i]];
    if (!v || v->type != Value::Type::kString || has_key_escapes(v->s)) {
      for (size_t k = 0; k < group_by_.size(); ++k)
        parts_[k] = append_key_part(key_, found_[group_slots_[k]]);
      parts_made_ = true;
      return;
    }
    size += v->s.size() + 2;
  }
  key_.resize(size);
  char* out = key_.data();
  for (size_t i = 0; i < group_by_.size(); ++i) {
    const std::string_view text = found_[group_slots_[i]]->s;
    if (!text.empty()) std::memcpy(out, text.data(), text.size());
    out += text.size();
    *out++ = '\0';
    *out++ = 's';
  }
  parts_made_ = false;
}

WindowAggregator::Group* WindowAggregator::group_for(Window& window) {
  auto it = window.groups.find(key_);
  if (it != window.groups.end()) return &it->second;
  if (window.groups.size() >= max_groups_) return nullptr;
  Group& group = window.groups[key_];
  if (!parts_made_) {  // make_key()'s common case: each part a string, in the key in order
    uint32_t offset = 0;
    for (size_t i = 0; i < group_by_.size(); ++i) {
      const Value& v = *found_[group_slots_[i]];
      parts_[i] = KeyPart{v, offset, static_cast<uint32_t>(v.s.size())};
      offset += static_cast<uint32_t>(v.s.size()) + 2;
    }
  }
  group.parts = parts_;
  for (KeyPart& part : group.parts) part.value.s = {};  // the text lives in the key
  group.metrics.resize(metrics_.size());
  return &group;
}

WindowAggregator::KeyPart WindowAggregator::append_key_part(std::string& key, const Value* v) {
  const size_t offset = key.size();
  char tag = 'm';
  if (v) {
    switch (v->type) {
      case Value::Type::kNull:
        tag = 'n';
        break;
      case Value::Type::kBool:
        tag = 'b';
        break;
      case Value::Type::kInt:
      case Value::Type::kDouble:
        tag = 'd';
        break;
      case Value::Type::kString:
        tag = 's';
        break;
      case Value::Type::kRaw:
        tag = 'r';
        break;
    }
    if (v->type == Value::Type::kString || v->type == Value::Type::kRaw) {
      if (!has_key_escapes(v->s)) {
        key += v->s;
      } else {
        for (char c : v->s) {
          if (c == '\0' || c == kKeyEscape) {
            key += kKeyEscape;
            key += c == '\0' ? '\x01' : '\x02';
          } else {
            key += c;
          }
        }
      }
    } else {
      v->append_text(key);  // no 0x00 or 0x01 in the text of a number, bool or null
    }
  }
  KeyPart part{v ? *v : Value::null(), static_cast<uint32_t>(offset),
               static_cast<uint32_t>(key.size() - offset)};
  key += '\0';
  key += tag;
  return part;
}

std::string_view WindowAggregator::key_text(std::string_view escaped, std::string& scratch) {
  if (escaped.find(kKeyEscape) == std::string_view::npos) return escaped;
  scratch.clear();
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == kKeyEscape && i + 1 < escaped.size()) {
      scratch += escaped[++i] == '\x01' ? '\0' : kKeyEscape;
    } else {
      scratch += escaped[i];
    }
  }
  return scratch;
}

void WindowAggregator::accumulate(Accumulator& acc, const Metric& metric, const Value* v,
                                  int64_t t) {
  if (metric.kind == MetricKind::kFirst || metric.kind == MetricKind::kLast) {
    if (!v) return;
    const bool first = metric.kind == MetricKind::kFirst;
    if (acc.n > 0 && (first ? t >= acc.at : t < acc.at)) return;
    acc.at = t;
    acc.kept = *v;
    if (v->type == Value::Type::kString || v->type == Value::Type::kRaw) {
      acc.kept_text.assign(v->s);
      acc.kept.s = {};  // the text lives in kept_text
    }
    ++acc.n;
    return;
  }
  if (metric.kind == MetricKind::kDistinct || metric.kind == MetricKind::kApproxDistinct) {
    if (!v) return;
    const std::string_view text = distinct_text(*v);
    if (metric.kind == MetricKind::kApproxDistinct && !acc.hll)
      acc.hll = std::make_unique<HyperLogLog>(hll_precision_);
    if (acc.hll) {
      acc.hll->add(text);
      return;
    }
    // Debian's abseil has its own string_view type; its hash is transparent only for that.
    absl::string_view lookup(text.data(), text.size());
    if (acc.distinct.contains(lookup)) return;
    if (acc.distinct.size() < max_distinct_) {
      acc.distinct.emplace(text);
      return;
    }
    // One value too many to count exactly: estimate from here on, and free the set.
    acc.hll = std::make_unique<HyperLogLog>(hll_precision_);
    for (const std::string& kept : acc.distinct) acc.hll->add(kept);
    acc.hll->add(text);
    acc.distinct = {};
    ++pending_distinct_overflow_;
    return;
  }
  if (!v || !v->is_number()) {
    ++pending_non_numeric_;
    return;
  }
  if (metric.kind == MetricKind::kPercentile) {
    double x = 0;
    v->to_double(x);
    if (!acc.quantiles) acc.quantiles = std::make_unique<DDSketch>(percentile_accuracy_);
    if (!acc.quantiles->add(x)) ++pending_non_numeric_;  // not finite
    return;
  }
  double x = 0;
  v->to_double(x);
  acc.sum += x;
  acc.min = acc.n == 0 ? x : std::min(acc.min, x);
  acc.max = acc.n == 0 ? x : std::max(acc.max, x);
  if (v->type == Value::Type::kInt && acc.all_int) {
    int64_t i = v->i;
    acc.int_min = acc.n == 0 ? i : std::min(acc.int_min, i);
    acc.int_max = acc.n == 0 ? i : std::max(acc.int_max, i);
    if (acc.int_sum_ok && __builtin_add_overflow(acc.int_sum, i, &acc.int_sum))
      acc.int_sum_ok = false;
  } else {
    acc.all_int = false;
  }
  ++acc.n;
}

std::string_view WindowAggregator::distinct_text(const Value& v) {
  if (v.type == Value::Type::kString || v.type == Value::Type::kRaw) return v.s;
  text_.clear();
  v.append_text(text_);
  return text_;
}

Value WindowAggregator::metric_value(const Metric& metric, const Group& group,
                                     const Accumulator& acc, char (&buf)[48]) const {
  bool exact = acc.all_int && acc.int_sum_ok;
  switch (metric.kind) {
    case MetricKind::kCount:
      return Value::integer(group.count);
    case MetricKind::kDistinct:
    case MetricKind::kApproxDistinct:
      return Value::integer(
          static_cast<int64_t>(acc.hll ? acc.hll->estimate() : acc.distinct.size()));
    case MetricKind::kPercentile:
      if (!acc.quantiles || acc.quantiles->count() == 0) return Value::null();
      return Value::number(acc.quantiles->quantile(metric.quantile));
    case MetricKind::kSum:
      return exact ? Value::integer(acc.int_sum) : Value::number(acc.sum);
    case MetricKind::kMin:
      if (acc.n == 0) return Value::null();
      return acc.all_int ? Value::integer(acc.int_min) : Value::number(acc.min);
    case MetricKind::kMax:
      if (acc.n == 0) return Value::null();
      return acc.all_int ? Value::integer(acc.int_max) : Value::number(acc.max);
    case MetricKind::kAvg:
      if (acc.n == 0) return Value::null();
      return Value::number((exact ? static_cast<double>(acc.int_sum) : acc.sum) /
                           static_cast<double>(acc.n));
    case MetricKind::kFirstSeen:
    case MetricKind::kLastSeen: {
      const int64_t t = metric.kind == MetricKind::kFirstSeen ? group.first_ns : group.last_ns;
      return time_value(t, time_format_ == TimeFormat::kRfc3339 ? format_time(t, buf) : "");
    }
    case MetricKind::kFirst:
    case MetricKind::kLast: {
      if (acc.n == 0) return Value::null();
      Value v = acc.kept;
      if (v.type == Value::Type::kString || v.type == Value::Type::kRaw) v.s = acc.kept_text;
      return v;
    }
  }
  return Value::null();
}

void WindowAggregator::advance(Context& ctx, Output& out, int64_t now_ns) {
  if (checkpoint_ && settle_emitted()) unsaved_ = true;
  bool emitted;
  if (event_time_) {
    release_quiet_streams(now_ns);
    const int64_t idle = now_ns - last_arrival_ns_;
    if (idle_timeout_ns_ > 0 && last_arrival_ns_ != 0 && idle >= idle_timeout_ns_ &&
        arrival_watermark_ != kMinTime)
      watermark_ = std::max(watermark_, arrival_watermark_ + idle);
    emitted = emit(ctx, out, watermark_);
  } else {
    closed_until_ = std::max(closed_until_, now_ns);
    emitted = emit(ctx, out, closed_until_);
  }
  if (!checkpoint_) return;
  // Saved when a window closed; windows whose output was acknowledged since leave the file at
  // most a second later, so that a crash re-sends little.
  const int64_t mono = ctx.clock().monotonic_ns();
  if (emitted || (unsaved_ && mono - last_save_ns_ >= kResaveNs)) save_checkpoint(ctx);
}

void WindowAggregator::flush(Context& ctx, Output& out) {
  if (!windows_emitted_) bind_counters(ctx);
  const bool stopping = ctx.stopping();
  if (!stopping) {
    emit(ctx, out, kMaxTime);  // the input ended: every window is complete
  } else if (!checkpoint_) {
    leave_for_replay(ctx);
    if (event_time_) save_watermark(ctx);
    emit(ctx, out, kMaxTime);  // what no source reads again goes out as it is
  } else {
    emit(ctx, out, kMinTime);  // only restored windows still to be re-sent; the open ones are saved
  }
  if (!checkpoint_) return;
  await_emitted();
  settle_emitted();
  if (!save_checkpoint(ctx)) {
    // Not saved: the input it holds is read again where the source can (the last good save
    // still matches what was acknowledged before).
    for (auto& [_, window] : windows_)
      for (AckRef& ack : window.acks) ack.fail();
  }
}

void WindowAggregator::leave_for_replay(Context& ctx) {
  uint64_t windows = 0, events = 0;
  for (auto it = windows_.begin(); it != windows_.end();) {
    std::vector<AckRef>& acks = it->second.acks;
    const bool replayable =
        !acks.empty() &&
        std::all_of(acks.begin(), acks.end(), [](const AckRef& a) { return a.replayable(); });
    if (!replayable) {
      ++it;
      continue;
    }
    for (AckRef& ack : acks) ack.fail();
    for (const auto& [_, group] : it->second.groups) events += static_cast<uint64_t>(group.count);
    ++windows;
    it = windows_.erase(it);
  }
  if (windows == 0) return;
  left_for_replay_->add(events);
  ctx.logf(LogLevel::kInfo,
           "stopping: {} open windows ({} events) are not emitted; their input is read again at "
           "the next start, which emits them whole",
           windows, events);
}

Value WindowAggregator::time_value(int64_t ns, std::string_view rfc3339) const {
  switch (time_format_) {
    case TimeFormat::kSeconds:
      return Value::integer(floor_div(ns, 1'000'000'000));
    case TimeFormat::kMillis:
      return Value::integer(floor_div(ns, 1'000'000));
    case TimeFormat::kRfc3339:
      break;
  }
  return Value::string(rfc3339);
}

void WindowAggregator::open_batch(Context& ctx, Emission& em) {
  em.batch = std::make_unique<Batch>();
  em.batch->origin.component = std::string(ctx.name());
  em.batch->ingest_time_ns = ctx.clock().now_ns();
  copy_names(*em.batch, em.names);
}

void WindowAggregator::copy_names(Batch& batch, std::vector<std::string_view>& names) const {
  names.clear();
  names.push_back(batch.copy_unpadded(start_field_));
  if (!end_field_.empty()) names.push_back(batch.copy_unpadded(end_field_));
  for (const std::string& field : group_by_) names.push_back(batch.copy_unpadded(field));
  for (const Metric& metric : metrics_) names.push_back(batch.copy_unpadded(metric.name));
}

Event& WindowAggregator::append_row(Batch& batch, const std::vector<std::string_view>& names,
                                    int64_t start, std::string_view start_text,
                                    std::string_view end_text, const std::string& key,
                                    const Group& group) {
  char text_buf[48];
  Event& event = batch.add({}, start);
  size_t name = 0;
  batch.append_field(event, names[name++], time_value(start, start_text));
  if (!end_field_.empty())
    batch.append_field(event, names[name++], time_value(window_end(start), end_text));
  for (const KeyPart& part : group.parts) {
    Value v = part.value;
    if (v.type == Value::Type::kString || v.type == Value::Type::kRaw)
      v.s = batch.copy_unpadded(
          key_text(std::string_view(key).substr(part.offset, part.size), text_));
    batch.append_field(event, names[name++], v);
  }
  for (size_t m = 0; m < metrics_.size(); ++m) {
    Value v = metric_value(metrics_[m], group, group.metrics[m], text_buf);
    if (v.type == Value::Type::kString || v.type == Value::Type::kRaw)
      v.s = batch.copy_unpadded(v.s);
    batch.append_field(event, names[name++], v);
  }
  return event;
}

bool WindowAggregator::selected(const InspectQuery& query, const std::string& key,
                                const Group& group) {
  for (const auto& [field, want] : query.where) {
    auto it = std::find(group_by_.begin(), group_by_.end(), field);
    if (it == group_by_.end()) return false;
    const KeyPart& part = group.parts[static_cast<size_t>(it - group_by_.begin())];
    if (part.value.type == Value::Type::kString || part.value.type == Value::Type::kRaw) {
      if (key_text(std::string_view(key).substr(part.offset, part.size), text_) != want)
        return false;
    } else if (part.value.type == Value::Type::kNull || !part.value.text_equals(want)) {
      return false;  // a missing field matches nothing
    }
  }
  return true;
}

bool WindowAggregator::inspect(Context&, const InspectQuery& query, Batch& out) {
  std::vector<std::string_view> names;
  copy_names(out, names);
  const std::string_view state_name = out.copy_unpadded("state");
  const std::string_view open = out.copy_unpadded("open"), closed = out.copy_unpadded("closed");
  std::vector<const std::pair<const std::string, Group>*> sorted;
  char buf[48];
  auto show = [&](int64_t start, const Window& window, bool is_open) {
    if (window_end(start) <= query.from_ns || start >= query.to_ns) return;
    sorted.clear();
    for (const auto& entry : window.groups)
      if (selected(query, entry.first, entry.second)) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    std::string_view start_text, end_text;
    if (time_format_ == TimeFormat::kRfc3339) {
      start_text = out.copy_unpadded(format_time(start, buf));
      end_text = out.copy_unpadded(format_time(window_end(start), buf));
    }
    for (const auto* entry : sorted) {
      if (out.size() >= query.max_rows) return;
      Event& e = append_row(out, names, start, start_text, end_text, entry->first, entry->second);
      out.append_field(e, state_name, Value::string(is_open ? open : closed));
    }
  };
  // Oldest first: what closed, then what is open.
  if (last_closed_) show(last_closed_->first, last_closed_->second, false);
  for (const Emitted& e : emitted_) show(e.start, e.window, false);
  for (const auto& [start, window] : windows_) show(start, window, true);
  return true;
}

bool WindowAggregator::emit(Context& ctx, Output& out, int64_t limit) {
  if (!windows_emitted_) bind_counters(ctx);
  Emission em;
  if (checkpoint_) resend(ctx, out, em);
  bool any = false;
  while (!windows_.empty()) {
    auto it = windows_.begin();
    const int64_t start = it->first;
    if (limit != kMaxTime && window_end(start) > limit) break;
    any = true;
    if (checkpoint_) {
      // Kept, with its input's acks, until its output is acknowledged; saved meanwhile.
      Emitted& e = emitted_.emplace_back();
      e.start = start;
      e.window = std::move(it->second);
      std::vector<AckRef> confirm = confirmation(e);
      write_window(ctx, out, em, start, e.window, confirm);
    } else {
      write_window(ctx, out, em, start, it->second, it->second.acks);
      last_closed_.emplace(start, std::move(it->second));  // for inspect(), until the next
    }
    windows_.erase(it);
  }
  if (em.batch && !em.batch->empty()) out.push(std::move(em.batch));
  if (em.emitted) windows_emitted_->add(em.emitted);
  return any;
}

void WindowAggregator::write_window(Context& ctx, Output& out, Emission& em, int64_t start,
                                    const Window& window, std::vector<AckRef>& acks) {
  const size_t max_events = std::max<size_t>(1, ctx.batch_limits().max_events);
  const int64_t end = window_end(start);
  std::string_view start_text, end_text;  // of this window, in the current batch's arena
  char buf[48];
  em.sorted.clear();
  for (const auto& entry : window.groups) em.sorted.push_back(&entry);
  std::sort(em.sorted.begin(), em.sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });

  bool in_batch = false;
  for (const auto* entry : em.sorted) {
    if (em.batch && em.batch->size() >= max_events) {
      // The full batch holds part of this window: it must be written before the acks fire.
      if (in_batch)
        for (const AckRef& ack : acks) em.batch->acks.push_back(ack.share());
      out.push(std::move(em.batch));
      in_batch = false;
    }
    if (!em.batch) {
      open_batch(ctx, em);
      start_text = {};
    }
    if (start_text.empty() && time_format_ == TimeFormat::kRfc3339) {
      start_text = em.batch->copy_unpadded(format_time(start, buf));
      end_text = em.batch->copy_unpadded(format_time(end, buf));
    }
    append_row(*em.batch, em.names, start, start_text, end_text, entry->first, entry->second);
    in_batch = true;
    ++em.emitted;
  }
  if (em.batch && in_batch) {
    std::move(acks.begin(), acks.end(), std::back_inserter(em.batch->acks));
    acks.clear();
  }
  // A window without groups (none are created so) would fail its acks with it, counted.
}

}  // namespace ingestd::plugins
