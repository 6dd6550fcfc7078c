// aggregate/window checkpoints: saving, restoring and settling the state across restarts.
//
// File format (integers little-endian; str = u32 length + bytes):
//   "INGWINCK" u8 version (3; 1 and 2 are read too: they lack what the later versions add)
//   str fingerprint                  the configuration the state belongs to
//   i64 watermark, i64 closed_until
//   u32 positions, each: str source, str topic, i32 partition, i64 next offset
//   u32 windows, each: i64 start, u8 emitted (1: output not yet acknowledged), u32 groups,
//     each: str key (v2: WindowAggregator::append_key_part's; v1: texts joined by 0x1f), i64 count,
//     [v2: i64 first_ns, last_ns], per group_by field: a value (u8 type, then bool u8, int i64,
//     double as u64 bits, string/raw nothing: the text is in the key), u32 offset, u32 size; per
//     metric: i64 n, u8 flags (1 all_int, 2 int_sum_ok), i64 int_sum, int_min, int_max, f64 sum,
//     min, max, u32 distinct values, each a str, [v2: i64 at, the kept value, str its text],
//     [v3: u8 sketch (0 none, 1 HyperLogLog, 2 DDSketch); HyperLogLog: u8 precision, u32 size,
//     the register bytes; DDSketch: f64 alpha, positive then negative buckets (each: u32 count,
//     then per bucket i32 index, u64 count), u8 positive collapsed, u8 negative collapsed,
//     u64 zero count, u64 count, f64 min, f64 max]
//   u64 XXH3 of everything before it
// The reader checks every length against what is left and the checksum first, so a damaged or
// torn file is refused as a whole, never half restored.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>

#include <fmt/format.h>
#include <xxhash.h>

#include "shared/state/state_file.h"
#include "window_aggregator.h"

namespace ingestd::plugins {

namespace {

constexpr std::string_view kMagic = "INGWINCK";
constexpr uint8_t kVersion = 3;
enum Sketch : uint8_t { kNoSketch = 0, kHyperLogLog = 1, kDDSketch = 2 };
constexpr int64_t kAwaitEmittedNs = 2'000'000'000;

void put(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}
void put_u8(std::string& out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void put_u32(std::string& out, uint32_t v) {
  put(out, &v, 4);
}  // x86-64 / aarch64: LE
void put_i64(std::string& out, int64_t v) {
  put(out, &v, 8);
}
void put_u64(std::string& out, uint64_t v) {
  put(out, &v, 8);
}
void put_f64(std::string& out, double v) {
  put(out, &v, 8);
}
void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// A value's type and, for bool, int and double, the value itself (a string's text goes elsewhere).
void put_value(std::string& out, const Value& v) {
  put_u8(out, static_cast<uint8_t>(v.type));
  switch (v.type) {
    case Value::Type::kBool:
      put_u8(out, v.b ? 1 : 0);
      break;
    case Value::Type::kInt:
      put_i64(out, v.i);
      break;
    case Value::Type::kDouble:
      put_f64(out, v.d);
      break;
    default:
      break;
  }
}

// Bounds-checked reading; every failure names what was being read.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool raw(void* p, size_t n, const char* what) {
    if (data_.size() - pos_ < n) return fail(what);
    std::memcpy(p, data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool u8(uint8_t& v, const char* what) { return raw(&v, 1, what); }
  bool u32(uint32_t& v, const char* what) { return raw(&v, 4, what); }
  bool i32(int32_t& v, const char* what) { return raw(&v, 4, what); }
  bool i64(int64_t& v, const char* what) { return raw(&v, 8, what); }
  bool u64(uint64_t& v, const char* what) { return raw(&v, 8, what); }
  bool f64(double& v, const char* what) { return raw(&v, 8, what); }
  bool str(std::string_view& s, const char* what) {
    uint32_t n = 0;
    if (!u32(n, what) || data_.size() - pos_ < n) return fail(what);
    s = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // A count of items of at least `min_bytes` each, checked against what is left.
  bool count(uint32_t& n, size_t min_bytes, const char* what) {
    if (!u32(n, what)) return false;
    if (static_cast<uint64_t>(n) * min_bytes > data_.size() - pos_) return fail(what);
    return true;
  }
  bool fail(const char* what) {
    if (error_.empty()) error_ = fmt::format("truncated or malformed at byte {} ({})", pos_, what);
    return false;
  }
  bool done() const { return pos_ == data_.size(); }
  const std::string& error() const { return error_; }
  // What put_value() wrote.
  bool value(Value& v, const char* what) {
    uint8_t type = 0;
    if (!u8(type, what)) return false;
    if (type > static_cast<uint8_t>(Value::Type::kRaw)) return fail(what);
    v.type = static_cast<Value::Type>(type);
    switch (v.type) {
      case Value::Type::kBool: {
        uint8_t b = 0;
        if (!u8(b, what)) return false;
        v.b = b != 0;
        return true;
      }
      case Value::Type::kInt:
        return i64(v.i, what);
      case Value::Type::kDouble:
        return f64(v.d, what);
      default:
        return true;
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  std::string error_;
};

void put_buckets(std::string& out, const std::vector<DDSketch::Bucket>& buckets) {
  put_u32(out, static_cast<uint32_t>(buckets.size()));
  for (const DDSketch::Bucket& b : buckets) {
    put_u32(out, static_cast<uint32_t>(b.index));
    put_u64(out, b.count);
  }
}

bool read_buckets(Reader& r, std::vector<DDSketch::Bucket>& buckets) {
  uint32_t n = 0;
  if (!r.count(n, 4 + 8, "sketch buckets")) return false;
  buckets.resize(n);
  for (DDSketch::Bucket& b : buckets)
    if (!r.i32(b.index, "bucket index") || !r.u64(b.count, "bucket count")) return false;
  return true;
}

// A metric's sketch (v3), if any: a HyperLogLog of `precision` where `distinct` (the metric
// counts distinct values), a DDSketch of `alpha` where `percentile`. False with `error` set for
// a sketch that this configuration cannot have saved, with only r.error() for a truncation.
bool read_sketch(Reader& r, bool distinct, bool percentile, int precision, double alpha,
                 std::unique_ptr<HyperLogLog>& hll, std::unique_ptr<DDSketch>& quantiles,
                 std::string& error) {
  uint8_t sketch = kNoSketch;
  if (!r.u8(sketch, "sketch")) return false;
  if (sketch == kNoSketch) return true;
  if (sketch == kHyperLogLog && distinct) {
    uint8_t saved = 0;
    uint32_t size = 0;
    if (!r.u8(saved, "sketch precision") || !r.count(size, 1, "sketch registers")) return false;
    std::vector<uint8_t> registers(size);
    if (!r.raw(registers.data(), size, "sketch registers")) return false;
    std::optional<HyperLogLog> restored = HyperLogLog::restore(saved, registers);
    if (!restored || saved != precision) {
      error = fmt::format(
          "a distinct-count sketch of precision {} with {} registers, which "
          "hll_precision {} cannot have made",
          saved, size, precision);
      return false;
    }
    hll = std::make_unique<HyperLogLog>(std::move(*restored));
    return true;
  }
  if (sketch == kDDSketch && percentile) {
    DDSketch::Snapshot snap;
    uint8_t positive_collapsed = 0, negative_collapsed = 0;
    if (!r.f64(snap.alpha, "sketch alpha") || !read_buckets(r, snap.positive) ||
        !read_buckets(r, snap.negative) || !r.u8(positive_collapsed, "sketch collapsed") ||
        !r.u8(negative_collapsed, "sketch collapsed") || !r.u64(snap.zero_count, "zero count") ||
        !r.u64(snap.count, "sketch count") || !r.f64(snap.min, "sketch min") ||
        !r.f64(snap.max, "sketch max"))
      return false;
    snap.positive_collapsed = positive_collapsed != 0;
    snap.negative_collapsed = negative_collapsed != 0;
    std::optional<DDSketch> restored = DDSketch::restore(snap);
    if (!restored || positive_collapsed > 1 || negative_collapsed > 1 || snap.alpha != alpha) {
      error = fmt::format("an inconsistent percentile sketch (alpha {}, {} values)", snap.alpha,
                          snap.count);
      return false;
    }
    quantiles = std::make_unique<DDSketch>(std::move(*restored));
    return true;
  }
  error = fmt::format("a sketch of kind {} for a metric that holds none of that kind", sketch);
  return false;
}

}  // namespace

std::string WindowAggregator::fingerprint() const {
  std::string fp = fmt::format("size={} time={} lateness={} ", size_ns_,
                               event_time_ ? "event" : "processing", lateness_ns_);
  if (hop_ns_ != size_ns_) fp += fmt::format("hop={} ", hop_ns_);  // tumbling: as before hop
  fp += "where=";
  for (const Filter& f : where_) {
    fp += f.field + "=";
    for (const std::string& v : f.values) fp += v + "|";
    fp += ";";
  }
  fp += " group_by=";
  for (const std::string& g : group_by_) fp += g + ";";
  fp += " metrics=";
  for (const Metric& m : metrics_) {
    if (m.kind == MetricKind::kPercentile)
      fp += fmt::format("{}={}({},{});", m.name, static_cast<int>(m.kind), m.field, m.quantile);
    else
      fp += fmt::format("{}={}({});", m.name, static_cast<int>(m.kind), m.field);
  }
  // Only when set otherwise, so that checkpoints saved before these options existed still match.
  if (hll_precision_ != HyperLogLog::kDefaultPrecision)
    fp += fmt::format(" hll_precision={}", hll_precision_);
  if (max_distinct_ != kDefaultMaxDistinct) fp += fmt::format(" max_distinct={}", max_distinct_);
  if (percentile_accuracy_ != DDSketch::kDefaultAlpha)
    fp += fmt::format(" percentile_accuracy={}", percentile_accuracy_);
  return fp;
}

size_t WindowAggregator::covered_prefix(Context& ctx, const Batch& batch) {
  const Origin& o = batch.origin;
  if (!o.topic || !o.partition || !o.offset || !o.end_offset) return 0;
  const int64_t from = *o.offset, to = *o.end_offset;
  auto [it, fresh] = covered_.try_emplace(Position{o.component, *o.topic, *o.partition});
  Covered& c = it->second;
  // Nothing before it is known to be taken in until the workers have passed it (at once without).
  if (fresh) c.next = std::numeric_limits<int64_t>::min();
  // The part of the batch taken in before: below next, or in a range beyond a gap.
  int64_t taken = from < c.next ? c.next : from;
  for (const auto& [a, b] : c.ahead)
    if (a <= taken && taken < b) taken = b;
  size_t skip = 0;
  if (taken > from) {
    if (taken >= to) {
      skip = batch.size();
    } else if (to - from == static_cast<int64_t>(batch.size())) {
      skip = static_cast<size_t>(taken - from);  // one event per offset: the prefix is exact
    } else if (!gap_warned_) {
      gap_warned_ = true;
      ctx.logf(LogLevel::kWarn,
               "a batch of {}[{}] offsets {}..{} overlaps the checkpoint (next {}) but its "
               "offsets have gaps: it is counted whole, so part of it may be counted twice",
               *o.topic, *o.partition, from, to - 1, taken);
    }
  }
  if (skip) replay_skipped_->add(skip);

  // Take [from, to) in.
  if (from <= c.next) {
    c.next = std::max(c.next, to);
  } else {
    auto at = std::lower_bound(c.ahead.begin(), c.ahead.end(), std::pair{from, to});
    at = c.ahead.insert(at, {from, to});
    if (at != c.ahead.begin() && std::prev(at)->second >= at->first) {  // joins the one before
      std::prev(at)->second = std::max(std::prev(at)->second, at->second);
      at = std::prev(c.ahead.erase(at));
    }
    while (std::next(at) != c.ahead.end() && std::next(at)->first <= at->second) {
      at->second = std::max(at->second, std::next(at)->second);
      c.ahead.erase(std::next(at));
    }
    if (c.ahead.size() > kMaxAhead) c.ahead.pop_back();
  }
  // The workers that may still deliver a batch before a gap's end (without workers: none).
  int64_t slowest = std::numeric_limits<int64_t>::max();
  if (o.workers > 1) {
    c.worker_from.resize(o.workers, std::numeric_limits<int64_t>::min());
    if (o.worker < o.workers) c.worker_from[o.worker] = std::max(c.worker_from[o.worker], from);
    slowest = *std::min_element(c.worker_from.begin(), c.worker_from.end());
  }
  size_t passed = 0;
  for (; passed < c.ahead.size(); ++passed) {
    const auto [a, b] = c.ahead[passed];
    if (a > c.next && slowest < a) break;  // a worker may still fill [next, a)
    c.next = std::max(c.next, b);
  }
  c.ahead.erase(c.ahead.begin(), c.ahead.begin() + static_cast<ptrdiff_t>(passed));
  return skip;
}

bool WindowAggregator::settle_emitted() {
  auto settled = [](const Emitted& e) {
    return e.outcome && e.outcome->load(std::memory_order_acquire) != 0;
  };
  bool any = false;
  for (Emitted& e : emitted_) {
    if (!settled(e)) continue;
    const bool ok = e.outcome->load(std::memory_order_acquire) == 1;
    for (AckRef& ack : e.window.acks) ack.resolve(ok);
    e.window.acks.clear();
    any = true;
  }
  std::erase_if(emitted_, settled);
  return any;
}

void WindowAggregator::await_emitted() {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::nanoseconds(kAwaitEmittedNs);
  std::unique_lock lock(outcomes_->mu);
  outcomes_->settled.wait_until(lock, deadline, [this] {
    return std::none_of(emitted_.begin(), emitted_.end(), [](const Emitted& e) {
      return e.outcome && e.outcome->load(std::memory_order_acquire) == 0;
    });
  });
}

std::vector<AckRef> WindowAggregator::confirmation(Emitted& e) {
  e.outcome = std::make_shared<std::atomic<int>>(0);
  std::vector<AckRef> confirm;
  confirm.push_back(AckRef::make([outcome = e.outcome, outcomes = outcomes_](bool ok) {
    {
      // Under the lock, so that a waiter cannot miss it between its check and its wait.
      std::lock_guard lock(outcomes->mu);
      outcome->store(ok ? 1 : 2, std::memory_order_release);
    }
    outcomes->settled.notify_all();
  }));
  return confirm;
}

void WindowAggregator::resend(Context& ctx, Output& out, Emission& em) {
  for (Emitted& e : emitted_) {
    if (e.outcome) continue;
    std::vector<AckRef> confirm = confirmation(e);
    write_window(ctx, out, em, e.start, e.window, confirm);
  }
}

bool WindowAggregator::save_checkpoint(Context& ctx) {
  std::string error;
  if (!replace_file(checkpoint_file_, encode_checkpoint(), error)) {
    checkpoint_errors_->add();
    ctx.logf(LogLevel::kError,
             "checkpoint not saved: {}; the input it would cover stays unacknowledged", error);
    return false;
  }
  checkpoints_->add();
  last_save_ns_ = ctx.clock().monotonic_ns();
  unsaved_ = false;
  // Durable now: the input held is acknowledged, so a source may commit it.
  for (auto& [_, window] : windows_) {
    for (AckRef& ack : window.acks) ack.ok();
    window.acks.clear();
  }
  for (Emitted& e : emitted_) {
    for (AckRef& ack : e.window.acks) ack.ok();
    e.window.acks.clear();
  }
  return true;
}

void WindowAggregator::save_watermark(Context& ctx) {
  if (watermark_ == kMinTime) return;
  const std::string dir = ctx.state_dir();
  std::string error;
  if (dir.empty() || !replace_file(dir + "watermark", fmt::format("{}\n", watermark_), error))
    ctx.logf(LogLevel::kWarn, "the watermark was not saved{}{}", error.empty() ? "" : ": ", error);
}

void WindowAggregator::load_watermark(Context& ctx) {
  const std::string dir = ctx.state_dir();
  if (dir.empty()) return;
  std::string data, error;
  const ReadStatus status = read_file(dir + "watermark", data, error);
  if (status == ReadStatus::kMissing) return;
  int64_t mark = 0;
  const char* end = data.data() + data.size();
  auto [p, ec] = std::from_chars(data.data(), end, mark);
  if (status != ReadStatus::kOk || ec != std::errc() || p == data.data() ||
      std::string_view(p, end) != "\n") {
    ctx.logf(LogLevel::kWarn, "{}; starting without the saved watermark",
             error.empty() ? "damaged " + dir + "watermark" : error);
    return;
  }
  watermark_ = std::max(watermark_, mark);
}

bool WindowAggregator::load_checkpoint(Context& ctx) {
  const std::string fp = fingerprint();
  const std::string dir = ctx.state_dir();
  if (dir.empty()) return false;  // the core has said why
  const std::string name = fmt::format("windows-{:016x}.ckpt", XXH3_64bits(fp.data(), fp.size()));
  checkpoint_file_ = dir + name;

  // Checkpoints of other configurations are kept (a reload back restores them) but named.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string other = entry.path().filename().string();
    if (other != name && other.starts_with("windows-") && other.ends_with(".ckpt"))
      ctx.logf(LogLevel::kWarn,
               "{} holds windows saved under another configuration of this aggregator (window, "
               "where, group_by or metrics differ); they are not restored",
               entry.path().string());
  }

  std::string data, error;
  switch (read_file(checkpoint_file_, data, error)) {
    case ReadStatus::kMissing:
      return true;
    case ReadStatus::kError:
      ctx.logf(LogLevel::kError, "{}; starting without a checkpoint", error);
      return true;
    case ReadStatus::kOk:
      break;
  }
  if (!decode_checkpoint(data, error)) {
    windows_.clear();
    emitted_.clear();
    covered_.clear();
    watermark_ = kMinTime;
    closed_until_ = kMinTime;
    const std::string aside = checkpoint_file_ + ".damaged";
    std::filesystem::rename(checkpoint_file_, aside, ec);
    ctx.logf(LogLevel::kError, "damaged checkpoint {}: {}; starting without it{}", checkpoint_file_,
             error, ec ? "" : " (kept as " + aside + ")");
    return true;
  }
  size_t groups = 0;
  for (const auto& [_, w] : windows_) groups += w.groups.size();
  ctx.logf(LogLevel::kInfo,
           "restored {} open windows ({} groups) and {} windows to send again from {}",
           windows_.size(), groups, emitted_.size(), checkpoint_file_);
  return true;
}

std::string WindowAggregator::encode_checkpoint() const {
  std::string out(kMagic);
  put_u8(out, kVersion);
  put_str(out, fingerprint());
  put_i64(out, watermark_);
  put_i64(out, closed_until_);
  put_u32(out, static_cast<uint32_t>(covered_.size()));
  for (const auto& [position, covered] : covered_) {
    put_str(out, std::get<0>(position));
    put_str(out, std::get<1>(position));
    put_u32(out, static_cast<uint32_t>(std::get<2>(position)));
    put_i64(out, covered.next);
  }
  put_u32(out, static_cast<uint32_t>(windows_.size() + emitted_.size()));
  auto window = [&](int64_t start, const Window& w, bool emitted) {
    put_i64(out, start);
    put_u8(out, emitted ? 1 : 0);
    put_u32(out, static_cast<uint32_t>(w.groups.size()));
    for (const auto& [key, group] : w.groups) {
      put_str(out, key);
      put_i64(out, group.count);
      put_i64(out, group.first_ns);
      put_i64(out, group.last_ns);
      for (const KeyPart& part : group.parts) {
        put_value(out, part.value);
        put_u32(out, part.offset);
        put_u32(out, part.size);
      }
      for (const Accumulator& acc : group.metrics) {
        put_i64(out, acc.n);
        put_u8(out, (acc.all_int ? 1 : 0) | (acc.int_sum_ok ? 2 : 0));
        put_i64(out, acc.int_sum);
        put_i64(out, acc.int_min);
        put_i64(out, acc.int_max);
        put_f64(out, acc.sum);
        put_f64(out, acc.min);
        put_f64(out, acc.max);
        put_u32(out, static_cast<uint32_t>(acc.distinct.size()));
        for (const std::string& v : acc.distinct) put_str(out, v);
        put_i64(out, acc.at);
        put_value(out, acc.kept);
        put_str(out, acc.kept_text);
        if (acc.hll) {
          put_u8(out, kHyperLogLog);
          put_u8(out, static_cast<uint8_t>(acc.hll->precision()));
          const std::span<const uint8_t> registers = acc.hll->registers();
          put_u32(out, static_cast<uint32_t>(registers.size()));
          put(out, registers.data(), registers.size());
        } else if (acc.quantiles) {
          const DDSketch::Snapshot snap = acc.quantiles->snapshot();
          put_u8(out, kDDSketch);
          put_f64(out, snap.alpha);
          put_buckets(out, snap.positive);
          put_buckets(out, snap.negative);
          put_u8(out, snap.positive_collapsed ? 1 : 0);
          put_u8(out, snap.negative_collapsed ? 1 : 0);
          put_u64(out, snap.zero_count);
          put_u64(out, snap.count);
          put_f64(out, snap.min);
          put_f64(out, snap.max);
        } else {
          put_u8(out, kNoSketch);
        }
      }
    }
  };
  for (const Emitted& e : emitted_) window(e.start, e.window, true);
  for (const auto& [start, w] : windows_) window(start, w, false);
  const uint64_t sum = XXH3_64bits(out.data(), out.size());
  put(out, &sum, 8);
  return out;
}

bool WindowAggregator::decode_checkpoint(std::string_view data, std::string& error) {
  auto bad = [&error](std::string why) {
    error = std::move(why);
    return false;
  };
  if (data.size() < kMagic.size() + 1 + 8 || data.substr(0, kMagic.size()) != kMagic) {
    error = "not a window checkpoint";
    return false;
  }
  uint64_t sum = 0;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  const std::string_view body = data.substr(0, data.size() - 8);
  if (XXH3_64bits(body.data(), body.size()) != sum) {
    error = "checksum mismatch (torn or damaged)";
    return false;
  }
  Reader r(body.substr(kMagic.size()));
  uint8_t version = 0;
  std::string_view fp;
  if (!r.u8(version, "version")) return bad(r.error());
  if (version < 1 || version > kVersion) {
    error = fmt::format("unknown version {}", version);
    return false;
  }
  if (!r.str(fp, "fingerprint") || !r.i64(watermark_, "watermark") ||
      !r.i64(closed_until_, "closed_until"))
    return bad(r.error());
  if (fp != fingerprint()) {
    error = "saved under another configuration";
    return false;
  }
  uint32_t n = 0;
  if (!r.count(n, 4 + 4 + 4 + 8, "positions")) return bad(r.error());
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view source, topic;
    int32_t partition = 0;
    int64_t next = 0;
    if (!r.str(source, "source") || !r.str(topic, "topic") || !r.i32(partition, "partition") ||
        !r.i64(next, "offset"))
      return bad(r.error());
    covered_[Position{std::string(source), std::string(topic), partition}].next = next;
  }
  const size_t parts = group_by_.size();
  const size_t min_group = 4 + 8 + (version >= 2 ? 16 : 0) + parts * (1 + 8) +
                           metrics_.size() * (8 + 1 + 6 * 8 + 4 + (version >= 2 ? 8 + 1 + 4 : 0) +
                                              (version >= 3 ? 1 : 0));
  uint32_t windows = 0;
  if (!r.count(windows, 8 + 1 + 4, "windows")) return bad(r.error());
  for (uint32_t w = 0; w < windows; ++w) {
    int64_t start = 0;
    uint8_t emitted = 0;
    uint32_t groups = 0;
    if (!r.i64(start, "window start") || !r.u8(emitted, "window flags") || emitted > 1 ||
        !r.count(groups, min_group, "groups"))
      return bad(r.error().empty() ? "bad window flags" : r.error());
    Window* window;
    if (emitted) {
      Emitted& e = emitted_.emplace_back();
      e.start = start;
      window = &e.window;
    } else {
      window = &windows_[start];
    }
    window->groups.reserve(groups);
    for (uint32_t g = 0; g < groups; ++g) {
      std::string_view key;
      if (!r.str(key, "group key")) return bad(r.error());
      Group group;
      if (!r.i64(group.count, "group count")) return bad(r.error());
      if (version >= 2 &&
          (!r.i64(group.first_ns, "group first time") || !r.i64(group.last_ns, "group last time")))
        return bad(r.error());
      group.parts.resize(parts);
      for (KeyPart& part : group.parts) {
        if (!r.value(part.value, "key value") || !r.u32(part.offset, "key offset") ||
            !r.u32(part.size, "key size"))
          return bad(r.error());
        if (part.offset > key.size() || part.size > key.size() - part.offset) {
          error = "a group key part lies outside its key";
          return false;
        }
      }
      group.metrics.resize(metrics_.size());
      for (size_t m = 0; m < metrics_.size(); ++m) {
        Accumulator& acc = group.metrics[m];
        uint8_t flags = 0;
        uint32_t distinct = 0;
        if (!r.i64(acc.n, "n") || !r.u8(flags, "flags") || !r.i64(acc.int_sum, "int_sum") ||
            !r.i64(acc.int_min, "int_min") || !r.i64(acc.int_max, "int_max") ||
            !r.f64(acc.sum, "sum") || !r.f64(acc.min, "min") || !r.f64(acc.max, "max") ||
            !r.count(distinct, 4, "distinct"))
          return bad(r.error());
        acc.all_int = flags & 1;
        acc.int_sum_ok = flags & 2;
        acc.distinct.reserve(distinct);
        for (uint32_t d = 0; d < distinct; ++d) {
          std::string_view v;
          if (!r.str(v, "distinct value")) return bad(r.error());
          acc.distinct.emplace(v);
        }
        std::string_view kept_text;
        if (version >= 2 && (!r.i64(acc.at, "kept time") || !r.value(acc.kept, "kept value") ||
                             !r.str(kept_text, "kept text")))
          return bad(r.error());
        acc.kept_text = kept_text;
        const MetricKind kind = metrics_[m].kind;
        std::string why;
        if (version >= 3 &&
            !read_sketch(r, kind == MetricKind::kDistinct || kind == MetricKind::kApproxDistinct,
                         kind == MetricKind::kPercentile, hll_precision_, percentile_accuracy_,
                         acc.hll, acc.quantiles, why))
          return bad(why.empty() ? r.error() : why);
      }
      if (version == 1) {
        // Version 1 joined the texts with 0x1f and no type: a null of no text was a missing field.
        std::string converted;
        for (KeyPart& part : group.parts) {
          Value v = part.value;
          const std::string_view text = key.substr(part.offset, part.size);
          if (v.type == Value::Type::kString || v.type == Value::Type::kRaw) v.s = text;
          const bool missing = v.type == Value::Type::kNull && text.empty();
          part = append_key_part(converted, missing ? nullptr : &v);
          part.value.s = {};
        }
        window->groups.emplace(std::move(converted), std::move(group));
        continue;
      }
      window->groups.emplace(std::string(key), std::move(group));
    }
  }
  if (!r.done()) {
    error = "bytes after the last window";
    return false;
  }
  return true;
}

}  // namespace ingestd::plugins
