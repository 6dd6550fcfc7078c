// aggregate/window: tumbling-window counts, sums, extremes, averages, distinct counts and
// percentiles.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "ddsketch.h"
#include "field_slots.h"
#include "hyperloglog.h"
#include "ingestd/component.h"
#include "ingestd/plugin.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

inline constexpr char kWindowAggregatorDoc[] =
    "Groups events into tumbling time windows (processing or event time) and emits one event "
    "per group and window with count, sum, min, max, avg, distinct (exact or estimated), "
    "percentile, first/last-seen time and first/last value metrics.";

inline constexpr OptionSpec kWindowSpecOptions[] = {
    {.name = "size",
     .type = OptionType::kDuration,
     .required = true,
     .min = "1ms",
     .doc = "Length of each window. Windows are aligned to multiples of the size (or of hop) "
            "since the Unix epoch: with 1m, a window runs from hh:mm:00.000 to hh:mm+1:00.000 "
            "UTC."},
    {.name = "hop",
     .type = OptionType::kDuration,
     .doc = "Hopping windows: a window of `size` starts every `hop` (which divides size into at "
            "most 1000 hops), so each event counts in size / hop overlapping windows; e.g. size "
            "1m, hop 10s gives the last minute every 10 seconds. Default: size (tumbling). In "
            "event time, an event late for the oldest of its windows still counts in the newer "
            "ones; it is `late` only when all of them are closed."},
    {.name = "time",
     .type = OptionType::kEnum,
     .default_value = "processing",
     .choices = "processing|event",
     .doc = "`processing`: an event belongs to the window of the wall-clock time it arrives at, "
            "and a window is emitted once the clock passes its end. `event`: an event belongs to "
            "the window of its own time (set by the parser's time_field), and a window is emitted "
            "once the watermark reaches its end: the largest event time seen minus "
            "allowed_lateness, taken per input stream (a source, or each Kafka partition of "
            "one) and the lowest of the streams that delivered in the last 5s (or "
            "idle_timeout), so a partition read behind the others holds windows open instead "
            "of being late."},
    {.name = "allowed_lateness",
     .type = OptionType::kDuration,
     .default_value = "0s",
     .min = "0s",
     .doc = "Event time only: how far behind the newest event time an event may be and still be "
            "counted. Events for windows that were already closed are counted as `late` and "
            "dropped."},
    {.name = "idle_timeout",
     .type = OptionType::kDuration,
     .default_value = "0s",
     .min = "0s",
     .doc = "Event time only: once no event has arrived for this long (by the wall clock), the "
            "watermark moves on with the wall clock from the last arrival, so the last windows of "
            "a stream that went quiet are emitted rather than waiting for its next event. Events "
            "that then arrive behind the watermark are late. 0 waits for the next event."},
    {.name = "late",
     .type = OptionType::kEnum,
     .default_value = "drop",
     .choices = "drop|dead_letter|route",
     .doc = "Event time only: what becomes of a late event (counted as `late` either way): "
            "dropped, written with the reason to this component's dead-letter file "
            "(data_dir/dead_letter/<component>.jsonl), or `route`d as it came (raw, fields, time) "
            "to the side output `late`, which another component must read (`inputs: "
            "[<component>.late]`); those are also counted as `late_routed`."},
    {.name = "max_future",
     .type = OptionType::kDuration,
     .default_value = "5m",
     .min = "0s",
     .doc = "Event time only: how far ahead of the wall clock an event's time may be. One event "
            "stamped in the future (a wrong clock, a bad record) would otherwise move the "
            "watermark there and make every later event late. Events beyond it are counted as "
            "`future` and treated as `future` says; their times never move the watermark. 0: no "
            "bound."},
    {.name = "future",
     .type = OptionType::kEnum,
     .default_value = "keep",
     .choices = "keep|drop|dead_letter",
     .doc = "Event time only: what becomes of an event beyond max_future: `keep` counts it in "
            "the window of its time (emitted once the watermark gets there) without moving the "
            "watermark; `drop` drops it; `dead_letter` writes it with the reason to the "
            "dead-letter file."},
};

inline constexpr SideOutputSpec kWindowSideOutputs[] = {
    {.name = "late",
     .option = "window.late",
     .value = "route",
     .doc = "The late events, unchanged: one batch per input batch that had any. The input is "
            "acknowledged once these are taken downstream too."},
};

inline constexpr OptionSpec kWindowOutputOptions[] = {
    {.name = "start",
     .type = OptionType::kString,
     .default_value = "window_start",
     .doc = "Name of the output field holding the window's start."},
    {.name = "end",
     .type = OptionType::kString,
     .default_value = "window_end",
     .doc = "Name of the output field holding the window's end; \"\" leaves it out."},
    {.name = "time_format",
     .type = OptionType::kEnum,
     .default_value = "rfc3339",
     .choices = "rfc3339|s|ms",
     .doc = "How start and end are written: an RFC 3339 string in UTC with milliseconds "
            "(2018-01-08T21:02:34.000Z), or an integer of seconds or milliseconds since the "
            "epoch."},
};

inline constexpr OptionSpec kWindowAggregatorOptions[] = {
    {.name = "window",
     .type = OptionType::kObject,
     .required = true,
     .doc = "The windows: size, time and allowed_lateness.",
     .children = kWindowSpecOptions,
     .child_count = std::size(kWindowSpecOptions)},
    {.name = "where",
     .type = OptionType::kStringMap,
     .doc =
         "Only events whose fields all have the given text pass, e.g. {sev: success} or "
         "{code: [\"500\", \"503\"]} (one of a list). A missing field does not match. Others are "
         "counted as `filtered`."},
    {.name = "group_by",
     .type = OptionType::kStringList,
     .default_value = "[]",
     .doc = "Fields (dotted paths) whose values form the group key; one output event per group "
            "and window, carrying these fields with the group's values (null when missing). "
            "Empty: one group per window."},
    {.name = "metrics",
     .type = OptionType::kStringMap,
     .default_value = "{count: count}",
     .doc = "Output field name -> metric: `count` (events), `sum(f)`, `min(f)`, `max(f)`, "
            "`avg(f)` over the numeric values of field f (others are counted as `non_numeric`), "
            "`distinct(f)` (number of distinct values of f by their text, so 7 and \"7\" count "
            "once: exact up to max_distinct, then estimated), `approx_distinct(f)` (the same, "
            "always estimated by a HyperLogLog of hll_precision: 0.81 % standard error in 16 KiB "
            "by default), `p50(f)`, `p90(f)`, `p95(f)`, `p99(f)`, `p999(f)` and `percentile(f, q)` "
            "with 0 < q <= 100 (e.g. percentile(latency, 99.9): the value of that rank among the "
            "numeric values of f, within percentile_accuracy, null when there is none; others are "
            "counted as `non_numeric`), `first_seen` / `last_seen` (the time of the group's "
            "earliest / latest event, written as output.time_format says), `first(f)` / `last(f)` "
            "(the value of f in the group's earliest / latest event, null when no event had f). "
            "sum, min and max are integers when every input was an integer."},
    {.name = "output",
     .type = OptionType::kObject,
     .doc = "The window's own fields in each output event: their names (start, end) and "
            "time_format. E.g. {start: ts, end: \"\", time_format: s} with metrics {cnt: ...} "
            "gives {\"ts\":1515445320,\"cnt\":42}.",
     .children = kWindowOutputOptions,
     .child_count = std::size(kWindowOutputOptions)},
    {.name = "max_groups",
     .type = OptionType::kInt,
     .default_value = "1000000",
     .min = "1",
     .doc = "The most groups one window holds, so that a field with unbounded values (a request "
            "id in group_by) cannot take all memory. Events of further groups are dropped and "
            "counted in `groups_overflow` (a warning is logged the first time). A group costs "
            "about 120 bytes, plus 40 per group_by field, its key's text and about 200 per metric "
            "(distinct: plus each value kept; approx_distinct: plus 2^hll_precision bytes; "
            "percentiles: plus about 8 per bucket, see percentile_accuracy)."},
    {.name = "max_distinct",
     .type = OptionType::kInt,
     .default_value = "100000",
     .min = "1",
     .doc =
         "The most distinct values `distinct(f)` keeps per group and metric to count them "
         "exactly. One more and that metric of that group switches to a HyperLogLog estimate "
         "(as approx_distinct, of hll_precision) fed with the values kept, which are then freed; "
         "the switches are counted in `distinct_overflow` (a warning is logged the first "
         "time)."},
    {.name = "hll_precision",
     .type = OptionType::kInt,
     .default_value = "14",
     .min = "4",
     .max = "18",
     .doc = "approx_distinct, and distinct past max_distinct: a HyperLogLog of 2^p one-byte "
            "registers per group and metric, with a standard error of 1.04 / sqrt(2^p): 3.25 % "
            "in 1 KiB at 10, 0.81 % in 16 KiB at 14, 0.41 % in 64 KiB at 16."},
    {.name = "percentile_accuracy",
     .type = OptionType::kDouble,
     .default_value = "0.01",
     .min = "0.000001",
     .max = "0.5",
     .doc = "Percentiles: the relative error alpha of their DDSketch: an estimate v' of the "
            "value v of the rank asked for has |v' - v| <= alpha * |v|. A sketch keeps about "
            "ln(max / min) / ln((1 + alpha) / (1 - alpha)) buckets of 8 bytes for values from min "
            "to max (at 0.01: about 460 for 1 ms .. 10 s, so a few KiB), at most 2048 per sign; "
            "past that the lowest values share a bucket and lose the guarantee."},
    {.name = "checkpoint",
     .type = OptionType::kBool,
     .default_value = "false",
     .doc = "Save the open windows, and the input positions they cover, to "
            "`data_dir/state/<component>/` whenever a window closes and at shutdown, and restore "
            "them at start when the configuration is the same: a restart in the middle of a "
            "window gives the same results as an uninterrupted run. The input is acknowledged (a "
            "Kafka source commits it) once it is in a saved checkpoint, not when the window is "
            "emitted. Without it, a shutdown drops open windows whose input is read again at the "
            "next start (Kafka, a checkpointed file) and emits the others as they are."},
};

// Tumbling-window aggregation.
//
// consume() finds the fields it reads in each event in one pass (FieldSlots), then assigns each
// event that passes `where` to the window [start, start + size) holding
// its time (start = floor(t / size) * size) and to the group of its group_by values, and updates
// the group's metrics. advance() emits the windows that have closed; flush() emits all of them.
// Closed windows are emitted in order of start, the groups of a window sorted by key, each as one
// event with the fields window_start and window_end (RFC 3339 UTC with milliseconds), the group_by
// fields and the metrics; its raw is empty and its time is the window start. Output batches hold
// at most batch_limits().max_events events.
//
// Time: with processing time an event's time is the clock at consume() (never earlier than the
// last advance(), so no event is late); a window closes at advance(now) once now >= end. With event
// time each input stream (a source, or each topic partition of one: Origin topic and partition;
// and each instance of a component on the way that hands batches on out of order between its
// instances and says so in Origin parser and worker; the core's parsers keep order and leave
// those unset) keeps its largest event time; the watermark is the lowest
// of those of the streams that delivered within the last 5 s (or idle_timeout), minus
// allowed_lateness, updated event by event and at every advance() (so that streams gone quiet
// stop holding it without waiting for another batch), never moving back: a partition read behind
// the others, or a worker still parsing an earlier batch, holds the windows open rather than having
// its records dropped as late (or routed: see below). A worker that has not delivered yet holds the
// watermark where it is from the first batch of any of its siblings until it delivers a batch or
// goes idle (one whose batches were all filtered out then holds nothing, like any stream without a
// time); an event whose window end <= watermark on arrival is late (counted, dropped); a window
// closes at advance() once watermark >= end. With idle_timeout, an advance() that finds no batch
// arrived for that long moves the watermark to its value at the last arrival plus the wall-clock
// time since.
//
// Acknowledgement: a consumed batch's acks go to every window its events reached (shared when
// several) and from there into every output batch holding that window's groups (shared when the
// window spans several), so a source hears back only once the aggregate is written. A window
// holds at most kMaxAcks refs, however many batches reach it: at that many, they are folded into
// one ref that resolves them all with its own verdict (ok once its output is written, failed when
// the window is dropped), and later folds add to that one; replayable refs are folded apart from
// the others until both kinds are in one window, so that a window is replayable exactly when all
// its input is. A fold dropped without a verdict counts once in acks_unresolved. A batch none
// of whose events reached a window (all filtered out or late) resolves its acks ok at once: they
// were dropped by policy. Windows dropped unemitted (the aggregator destroyed after an error) fail
// theirs.
//
// Stop (flush() while ctx.stopping()): an open window whose acks are all replayable (see AckRef)
// is dropped and its acks failed, counted in `left_for_replay` (events): the source reads that
// input again at the next start, which recomputes the window whole instead of emitting it twice,
// cut short and then complete. Other open windows are emitted. With event time the watermark is
// saved (`<state_dir>/watermark`) and restored at start, so that input read again is late for
// the windows already emitted, as it was before the stop. flush() at the end of the input (a
// batch job, or the inputs rewired by a reload) emits every window.
//
// Checkpoint (`checkpoint: true`): the state is saved to `<state_dir>/windows-<fingerprint>.ckpt`
// after every advance() that emitted a window, and at flush(): the open windows, the windows
// emitted whose output is not yet acknowledged (re-emitted by the next start), the watermark and,
// per (source, topic, partition), the offset before which all input was taken in (see Covered).
// Once a save is durable, every ack held is resolved ok, so a Kafka source commits what the
// checkpoint covers. At start the file of this configuration's fingerprint (window, where,
// group_by, metrics, and the sketch options when not at their defaults) is restored; input that a
// restored checkpoint already covers (a batch whose origin offsets are before the saved position,
// from a source that committed less) is skipped and counted as `replay_skipped`, so a restart
// counts nothing twice. A damaged file is reported, renamed to `.damaged` and ignored; a failed
// save is reported and counted in `checkpoint_errors`, and the acks wait for the next one.
//
// Sketches: approx_distinct(f) holds a HyperLogLog, and distinct(f) one once its exact set would
// pass max_distinct (the set is then freed); percentiles hold a DDSketch. Each is allocated at the
// metric's first value and saved in checkpoints.
//
// Late routing (`late: route`): consume() copies the late events of a batch (raw, time, fields,
// origin) into one batch, pushed to the side output `late` (Context::side_output())
// before it returns; the copy shares the input's acks, so the source hears back only once the
// late output's consumers have taken it as well as the windows' output. Pushing blocks while
// the late output's consumers are full (backpressure, as for the main output). Counted in `late`
// and in `late_routed`.
//
// Counters: filtered, late (late_routed: those routed), future, non_numeric (per metric and event),
// windows (groups emitted), left_for_replay, groups_overflow, distinct_overflow (accumulators
// switched to an estimate), and with checkpoint: checkpoints, checkpoint_errors, replay_skipped.
// Threading: one instance, driven by one thread (the Aggregator contract); output acks settle on
// any thread and only set an atomic. No allocation per event once its window and group exist,
// except for new distinct values, a sketch's first value and a DDSketch's range growing.
class WindowAggregator final : public Aggregator {
 public:
  WindowAggregator(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  void consume(Context& ctx, Batch& batch) override;
  void advance(Context& ctx, Output& out, int64_t now_ns) override;
  void flush(Context& ctx, Output& out) override;
  // The open windows and the last one closed (with checkpoint: those whose output is not yet
  // acknowledged), group by group, sorted by window start and group.
  bool inspect(Context& ctx, const InspectQuery& query, Batch& out) override;

 private:
  enum class MetricKind {
    kCount,
    kSum,
    kMin,
    kMax,
    kAvg,
    kDistinct,
    kFirstSeen,
    kLastSeen,
    kFirst,
    kLast,
    kApproxDistinct,
    kPercentile  // (the values are in checkpoint fingerprints: append new kinds)
  };
  struct Metric {
    std::string name;
    MetricKind kind = MetricKind::kCount;
    std::string field;
    double quantile = 0;  // kPercentile: in (0, 1]
  };
  struct Filter {
    std::string field;
    std::vector<std::string> values;
  };
  // The state of one metric in one group.
  struct Accumulator {
    int64_t n = 0;           // numeric inputs
    bool all_int = true;     // every input was kInt
    bool int_sum_ok = true;  // int_sum has not overflowed
    int64_t int_sum = 0, int_min = 0, int_max = 0;
    double sum = 0, min = 0, max = 0;
    absl::flat_hash_set<std::string> distinct;  // distinct(f), until it passes max_distinct
    // approx_distinct(f), and distinct(f) past max_distinct; percentiles. Null until the first
    // value, so that the other metrics stay small.
    std::unique_ptr<HyperLogLog> hll;
    std::unique_ptr<DDSketch> quantiles;
    // first(f) / last(f): the value of f in the group's earliest / latest event (by time; the
    // first / last to arrive among equals), its text in kept_text for strings; at is that time.
    Value kept;
    std::string kept_text;
    int64_t at = 0;
  };
  // One group_by value of a group: its type and numbers as first seen, its text at
  // [offset, offset + size) of the group key.
  struct KeyPart {
    Value value;
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct Group {
    int64_t count = 0;
    int64_t first_ns = std::numeric_limits<int64_t>::max();  // earliest event time
    int64_t last_ns = std::numeric_limits<int64_t>::min();   // latest event time
    std::vector<KeyPart> parts;
    std::vector<Accumulator> metrics;
  };
  struct Window {
    absl::flat_hash_map<std::string, Group> groups;
    // The input's acks, at most kMaxAcks: see hold().
    std::vector<AckRef> acks;
    // The refs folded into acks.front() by hold(); alive while that ref holds.
    std::weak_ptr<std::vector<AckRef>> folded;
    bool folded_replayable = false;  // acks.front() is replayable (and so is all it folds)
  };
  // The refs a window holds at most: beyond, they are folded into one (hold()).
  static constexpr size_t kMaxAcks = 256;
  // Event time: one input stream (a source, or a topic partition of it; and a parser worker of
  // those, see Origin::workers).
  struct Stream {
    int64_t newest = std::numeric_limits<int64_t>::min();  // its largest event time taken in
    int64_t seen_ns = 0;                                   // wall clock of its last batch
    // A parser worker's that has not delivered yet: holds the watermark back (while not idle)
    // without a time, as its first batch may be earlier than the other workers' last.
    bool worker = false;
  };
  // Checkpoint: a window emitted and kept until its output is acknowledged. `outcome` is set by
  // the output's ack (1 ok, 2 failed); null for one restored from a checkpoint, not yet re-sent.
  static constexpr int64_t kMinTime = std::numeric_limits<int64_t>::min();  // no time yet

  struct Emitted {
    int64_t start = 0;
    Window window;
    std::shared_ptr<std::atomic<int>> outcome;
  };
  // Where output acks report to await_emitted(): they may run on any thread, and after this
  // aggregator is gone (hence shared).
  struct Outcomes {
    std::mutex mu;
    std::condition_variable settled;
  };
  // (source component, topic, partition)
  using Position = std::tuple<std::string, std::string, int32_t>;
  // Checkpoint: the offsets of one input position taken in. A multi-worker parser delivers
  // batches out of order between its workers (in order within one), so a batch may come after a
  // gap that an earlier batch, still in another worker, fills later. A gap is filled, or known to
  // stay (Kafka skips offsets), once every worker has delivered a batch beyond it; only then does
  // `next` pass it. Without workers a gap stays at once, as before.
  struct Covered {
    int64_t next = 0;  // every offset before it was taken in (what a checkpoint saves)
    // [from, to) taken in beyond a gap, sorted, at most kMaxAhead (then the highest is forgotten:
    // input read again may be counted twice, never skipped)
    std::vector<std::pair<int64_t, int64_t>> ahead;
    std::vector<int64_t> worker_from;  // per parser worker: the first offset of its last batch
  };
  static constexpr size_t kMaxAhead = 1024;
  // The output batch being filled by emit().
  struct Emission {
    BatchPtr batch;
    std::vector<std::string_view> names;  // output field names, in the batch's arena
    std::vector<const std::pair<const std::string, Group>*> sorted;
    uint64_t emitted = 0;
  };

  void bind_counters(Context& ctx);
  // The stream of a batch's origin (seen now), and in `others` the lowest newest time of the
  // other streams that are not idle.
  Stream& stream_of(const Origin& origin, int64_t now, int64_t& others);
  // Whether the event (its fields in found_) passes every `where` filter.
  bool passes() const;
  // The group key of the event whose fields are in found_, into key_ and parts_.
  void make_key();
  // Adds a consumed batch's ref to the window's acks. Once they reach kMaxAcks, all but the
  // first are folded into one ref standing for them (the first when it is such a fold already,
  // of the same replayability), whose verdict resolves them all.
  void hold(Window& window, AckRef ack);
  // Counts the event (time t; its fields in found_, its key in key_) in its group of `window`;
  // false when that group is one too many.
  bool add(Window& window, int64_t t);
  // The group of key_ in `window`, made if new; null when the window has max_groups already.
  Group* group_for(Window& window);
  // Group keys: per group_by field its text, with the bytes 0x00 and 0x01 escaped (0x01 0x01 and
  // 0x01 0x02), then 0x00 and a tag of its type (missing, null, bool, number, string, raw). So two
  // different values never share a key (a missing field and "", null and "null", texts holding
  // the terminator), and keys sort by the first field's text, then by the next one's.
  // Appends `v` (null: missing) to `key`; the part says where its (escaped) text lies.
  static KeyPart append_key_part(std::string& key, const Value* v);
  // A part's text as it came, from its escaped form in the key.
  static std::string_view key_text(std::string_view escaped, std::string& scratch);
  void accumulate(Accumulator& acc, const Metric& metric, const Value* value, int64_t t);
  // distinct and approx_distinct: the text a value counts by (a string's own, else append_text's),
  // in text_ when it has to be made.
  std::string_view distinct_text(const Value& v);
  int64_t window_start(int64_t t) const;
  int64_t window_end(int64_t start) const;
  // Emits the windows whose end is <= limit (all of them for INT64_MAX), oldest first; true when
  // it emitted any.
  bool emit(Context& ctx, Output& out, int64_t limit);
  void open_batch(Context& ctx, Emission& em);
  // The output field names (start, end, group_by fields, metrics) in `batch`'s arena.
  void copy_names(Batch& batch, std::vector<std::string_view>& names) const;
  // Appends one output event: a group of the window at `start` (its times as start_text and
  // end_text with rfc3339 time_format, in `batch`'s arena).
  Event& append_row(Batch& batch, const std::vector<std::string_view>& names, int64_t start,
                    std::string_view start_text, std::string_view end_text, const std::string& key,
                    const Group& group);
  // Whether the group's fields have the texts a query asks for.
  bool selected(const InspectQuery& query, const std::string& key, const Group& group);
  // A window's start or end as output.time_format says (`rfc3339`: the text given).
  Value time_value(int64_t ns, std::string_view rfc3339) const;
  // Writes one window's groups into output batches; the batches holding it get `acks` (moved in,
  // shared when it spans several).
  void write_window(Context& ctx, Output& out, Emission& em, int64_t start, const Window& window,
                    std::vector<AckRef>& acks);
  // Checkpoint: emits the restored windows still to be re-sent; the output's ack settles them.
  void resend(Context& ctx, Output& out, Emission& em);
  // The ack for an emitted window's output: it sets e.outcome and wakes await_emitted().
  std::vector<AckRef> confirmation(Emitted& e);
  // How many leading events of `batch` a restored checkpoint covers already; records its position.
  size_t covered_prefix(Context& ctx, const Batch& batch);
  // Drops emitted windows whose output was acknowledged, settling their input's acks; true when
  // any was dropped.
  bool settle_emitted();
  // Waits (up to a bound) for the output of emitted windows to be acknowledged.
  void await_emitted();
  // The stop without a checkpoint: drops the windows that are all replayable input.
  void leave_for_replay(Context& ctx);
  // late: route: pushes the events of `batch` listed in late_events_ to the side output `late`
  // (sharing the batch's acks) and clears the list.
  void route_late(Context& ctx, const Batch& batch);
  // Event time without a checkpoint: the watermark at stop, so that input read again after a
  // restart is late for the windows emitted before it, as it was then.
  void save_watermark(Context& ctx);
  void release_quiet_streams(int64_t now);
  void load_watermark(Context& ctx);
  bool load_checkpoint(Context& ctx);
  // Saves the state; resolves every held ack ok once it is durable.
  bool save_checkpoint(Context& ctx);
  std::string fingerprint() const;
  std::string encode_checkpoint() const;
  bool decode_checkpoint(std::string_view data, std::string& error);
  // The metric's output value; text that does not outlive `buf` or the group (times, first(f))
  // is to be copied by the caller.
  Value metric_value(const Metric& metric, const Group& group, const Accumulator& acc,
                     char (&buf)[48]) const;

  static constexpr int64_t kMaxHops = 1000;  // windows per event: size / hop
  int64_t size_ns_ = 1'000'000'000;
  int64_t hop_ns_ = 1'000'000'000;  // = size_ns_: tumbling
  std::vector<Window*> holding_;    // reused by consume(): the windows holding an event's time
  bool event_time_ = false;
  int64_t lateness_ns_ = 0;
  int64_t idle_timeout_ns_ = 0;  // event time: 0 = the watermark waits for events
  int64_t max_future_ns_ = 0;    // event time: 0 = no bound
  enum class Policy : uint8_t { kKeep, kDrop, kDeadLetter, kRoute };
  Policy late_policy_ = Policy::kDrop;
  Policy future_policy_ = Policy::kKeep;
  std::vector<Filter> where_;
  std::vector<std::string> group_by_;
  std::vector<Metric> metrics_;
  enum class TimeFormat : uint8_t { kRfc3339, kSeconds, kMillis };
  std::string start_field_ = "window_start";
  std::string end_field_ = "window_end";  // "": none
  TimeFormat time_format_ = TimeFormat::kRfc3339;
  bool checkpoint_ = false;
  size_t max_groups_ = 1'000'000;  // per window
  static constexpr size_t kDefaultMaxDistinct = 100'000;
  size_t max_distinct_ = kDefaultMaxDistinct;  // per group and metric, then distinct(f) estimates
  int hll_precision_ = HyperLogLog::kDefaultPrecision;
  double percentile_accuracy_ = DDSketch::kDefaultAlpha;
  std::string checkpoint_file_;   // <state_dir>/windows-<fingerprint hash>.ckpt
  std::vector<Emitted> emitted_;  // checkpoint: output not yet acknowledged
  std::shared_ptr<Outcomes> outcomes_ = std::make_shared<Outcomes>();
  std::map<Position, Covered> covered_;  // checkpoint: per input position
  int64_t last_save_ns_ = 0;             // monotonic
  bool unsaved_ = false;                 // emitted windows were acknowledged since the last save
  std::vector<Window*> reached_;         // reused by consume(): the windows a batch reached
  std::vector<size_t> late_events_;      // reused by consume(): late events' indices to route

  std::map<int64_t, Window> windows_;  // by start; node-based, so Window pointers stay valid
  std::optional<std::pair<int64_t, Window>> last_closed_;  // without checkpoint, for inspect()
  int64_t watermark_;                                      // event time: see the class comment
  absl::flat_hash_map<std::string, Stream> streams_;       // event time: by origin
  std::string stream_key_;                                 // reused
  int64_t last_arrival_ns_ = 0;    // event time: wall clock at the last consume(), 0 = none
  int64_t arrival_watermark_ = 0;  // event time: watermark_ after that consume()
  int64_t closed_until_;           // processing time: the latest advance() time
  // The fields read from each event, found in one pass: their slots in found_ per filter,
  // group_by field and metric (metrics without a field: none, SIZE_MAX).
  FieldSlots slots_;
  std::vector<size_t> where_slots_, group_slots_, metric_slots_;
  std::vector<const Value*> found_;  // reused: the current event's fields, by slot
  std::string key_;                  // reused group key
  std::vector<KeyPart> parts_;       // reused: the parts of key_
  bool parts_made_ = false;          // parts_ are key_'s (else group_for makes them)
  std::string text_;                 // reused value text (distinct, group key texts)

  Counter* filtered_ = nullptr;
  Counter* late_ = nullptr;
  Counter* late_routed_ = nullptr;
  Counter* future_ = nullptr;
  Counter* groups_overflow_ = nullptr;
  Counter* distinct_overflow_ = nullptr;
  Counter* non_numeric_ = nullptr;
  Counter* windows_emitted_ = nullptr;
  Counter* left_for_replay_ = nullptr;
  Counter* checkpoints_ = nullptr;
  Counter* checkpoint_errors_ = nullptr;
  Counter* replay_skipped_ = nullptr;
  Counter* acks_unresolved_ = nullptr;  // the core's: a fold dropped without a verdict counts here
  bool gap_warned_ = false;
  uint64_t pending_non_numeric_ = 0;
  uint64_t pending_distinct_overflow_ = 0;
};

}  // namespace ingestd::plugins
