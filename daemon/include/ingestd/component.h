// The interfaces of the four component kinds and of the core services they may use.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ingestd/event.h"
#include "ingestd/schema.h"

namespace boost::asio {
class io_context;
}

namespace ingestd {

class Output;

enum class LogLevel : int { kTrace, kDebug, kInfo, kWarn, kError };

// A monotonically increasing count owned by the core; exported in metrics and the final summary.
class Counter {
 public:
  void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// One sample of a gauge family that a component reports (Context::gauges()): its labels, besides
// the `component` label that the core adds, and its value.
struct GaugeSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};
using GaugeCollector = std::function<void(std::vector<GaugeSample>&)>;

// Time, injected so that windows, retries and breakers can be tested without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;        // wall clock (CLOCK_REALTIME), ns since epoch
  virtual int64_t monotonic_ns() const = 0;  // CLOCK_MONOTONIC
};

struct BatchLimits {
  size_t max_events = 1024;
  size_t max_bytes = 1 << 20;
  int64_t linger_ns = 100'000'000;
};

// What the core offers a running component. One per component; thread-safe.
class Context {
 public:
  virtual ~Context() = default;
  virtual std::string_view name() const = 0;
  virtual void log(LogLevel level, std::string_view message) = 0;
  // A counter named "<component>.<name>" in metrics. The reference stays valid for the
  // component's lifetime: look it up once, in start(), not per event.
  virtual Counter& counter(std::string_view name) = 0;
  virtual const Clock& clock() const = 0;
  // The daemon's Boost.Asio io_context, run by its pool of io threads until the daemon ends. A
  // plugin built with ingestd_add_plugin() may run its own Asio objects on it (sockets, timers,
  // strands, coroutines): its Asio state is the daemon's (cmake/IngestdPlugin.cmake,
  // docs/plugins.md). Handlers must never block; the component destroys its Asio objects, and
  // waits for their handlers, before it ends.
  virtual boost::asio::io_context& io() = 0;
  virtual BatchLimits batch_limits() const = 0;
  // Writes a record that could not be processed, with the reason, to the dead-letter file of this
  // component (data_dir/dead_letter/<component>.jsonl). Counted; never throws. A stored record
  // is set aside durably: it does not fail its batch's acks. Returns false when the record could
  // not be stored (the core has counted it as lost and logged why): the caller then fails the
  // acks of the batch the record came from (Batch::resolve_acks(false)); for a sink, whose batch
  // is const, the core does so when the write returns.
  virtual bool dead_letter(std::string_view raw, std::string_view reason) = 0;
  // This component's own directory for state kept across restarts (checkpoints, offsets):
  // data_dir/state/<component>/, created (with its parents) on first call. Returns "" when it
  // cannot be created (an unwritable or missing data_dir); the core has then logged why, with the
  // path and the system's error, and the component decides (a source that promised checkpoints
  // fails start()). Files in it are the component's own: write them atomically (temp file,
  // fsync, rename), as a crash may come at any point. A replacement after a reload gets the same
  // directory.
  virtual std::string state_dir() = 0;
  // True once the pipeline is shutting down (sources should return from run()).
  virtual bool stopping() const = 0;
  // Waits up to timeout_ns or until stopping; returns stopping(). Sources pace themselves with it.
  virtual bool wait_for_stop(int64_t timeout_ns) = 0;
  // The side output `name` of this component (see SideOutputSpec in plugin.h), or null when the
  // component's descriptor has no such output or its option does not turn it on. Valid for the
  // component's lifetime; push to it as to the main output (an aggregator may do so from
  // consume()), and it fans out to whoever reads `component.name`.
  virtual Output* side_output(std::string_view name) {
    (void)name;
    return nullptr;
  }

  // Reports the gauge family `ingestd_<family>` (family: [a-z][a-z0-9_]*, e.g.
  // "kafka_consumer_lag") in the admin API's /metrics, with `help` as its HELP text: `collect`
  // appends the family's current samples each time metrics are scraped. It runs on a thread of
  // the admin server, concurrently with the component's own threads, while the component is in
  // the running pipeline (never after it is destroyed): it must be thread-safe and quick, so it
  // reads values that the component keeps up to date, and does no I/O. Call it in start(); each
  // call adds a collector (the instances of a multi-worker component may each add theirs).
  // Components reporting the same family are exported together under the first one's help.
  // Throws std::invalid_argument for a bad family name. The default reports nothing.
  virtual void gauges(std::string_view family, std::string_view help, GaugeCollector collect) {
    (void)family;
    (void)help;
    (void)collect;
  }

  template <class... Args>
  void logf(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
    log(level, fmt::format(f, std::forward<Args>(args)...));
  }
};

// What Output::try_push() did with a batch.
// - kOk: taken (a queue with `when_full: drop_newest` may have dropped it: counted, acks failed).
// - kFull: not taken: a downstream queue that blocks when full has no room. The batch is still the
//   caller's, untouched, acks intact, and no consumer got a copy.
// - kStopped: taken and discarded: the pipeline is stopping past its deadline (counted as
//   shutdown_dropped, acks failed).
enum class PushResult { kOk, kFull, kStopped };

// Where a source or an aggregator hands its batches to the graph.
//
// Fan-out: with several downstream components each gets its own copy (Batch::fan_out(): one
// holder of the acks each, the bytes shared). A push reaches all of them; so does a try_push()
// that returns kOk, and one that returns kFull reaches none (all or nothing). Thread-safe, but one
// producer pushes at a time (a second caller waits for the first).
class Output {
 public:
  virtual ~Output() = default;
  // Takes the batch. Blocks while a downstream queue is full and its policy is `block` (this is
  // how backpressure reaches a source). Returns false when the batch was not accepted because the
  // pipeline is stopping past its deadline; the core has counted it as dropped.
  virtual bool push(BatchPtr batch) = 0;
  // As push(), but never waits for room: kFull leaves the batch with the caller, which goes on
  // with its own work (a Kafka source keeps polling with its partitions paused) and offers it
  // again later, typically after wait_writable(). A sink with a spool whose queue has been found
  // full for a second takes the batch into its spool instead, as with push(); should that append
  // fail (a disk error), the copy for that sink is pushed blocking, as push() would.
  virtual PushResult try_push(BatchPtr& batch) = 0;
  // Waits at most timeout_ns until every downstream queue has room for a batch (so that a
  // try_push() would likely succeed; another producer may take the room first) or the pipeline
  // is stopping past its deadline; returns true then, false on timeout. Returns false within
  // about 100 ms once the component is asked to stop (check Context::stopping()).
  virtual bool wait_writable(int64_t timeout_ns) = 0;
  // The component will push no more: the components downstream may finish with its data now (an
  // aggregator emits or saves its windows), so that a source stopping can still hear back about
  // what it sent before it commits its position. Later pushes are refused (false, kStopped) and
  // counted as dropped. For a source's run(); it is implied when run() returns.
  virtual void close() {}
};

// Every component. The factory (the constructor) validates and stores options but does no I/O,
// so that `ingestd validate` runs it safely; I/O begins in start().
class Component {
 public:
  virtual ~Component() = default;
  // Called once before data flows. Returns false after logging why, which stops start-up.
  virtual bool start(Context&) { return true; }
  // SIGUSR1: reopen files (logrotate). Called from a control thread.
  virtual void reopen(Context&) {}
};

// Produces data. run() is called on a thread of its own; it returns when its input is exhausted
// (a batch job) or soon after ctx.stopping() becomes true. interrupt() is called from another
// thread when stopping, to wake a run() blocked in I/O. A source that must stay responsive while
// downstream is full (a Kafka consumer that keeps polling) uses Output::try_push() and
// wait_writable() instead of push(). To hear back about its data it puts AckRefs into its batches
// (see AckRef); an empty batch is acknowledged ok at once (nothing to deliver).
class Source : public Component {
 public:
  virtual void run(Context& ctx, Output& out) = 0;
  virtual void interrupt() {}
};

// Turns raw records into events with fields, in place. The core makes one instance per worker,
// so an instance is used by one thread at a time. Records that fail are removed from the batch
// and counted or dead-lettered by the parser (ctx.dead_letter()). Acks: the batch keeps its refs.
// Removing records does not fail them, not even all of them: a record dropped by `on_error` or
// durably dead-lettered is set aside on purpose, and delivering it again would not help. When
// ctx.dead_letter() returns false the record is lost: fail the acks (Batch::resolve_acks(false)).
// A parse() that throws fails them too (the core does it).
class Parser : public Component {
 public:
  virtual void parse(Context& ctx, Batch& batch) = 0;
};

// Keeps state across batches and emits results. Always one instance on one thread.
// The core calls consume() per input batch, advance() after each batch and at least every
// tick interval with the current wall-clock time, and flush() once when its inputs have ended.
// Acks: consume() takes the batch's refs (Batch::acks) into the state its data went into, and the
// output batches that carry that state carry them on; refs of data that no output will carry on
// purpose (filtered out, too late) are resolved ok() there. Refs left in the batch after
// consume(), or dropped with the state (an exception, a discarded window), fail and are counted
// in <component>.acks_unresolved.
class Aggregator : public Component {
 public:
  virtual void consume(Context& ctx, Batch& batch) = 0;
  virtual void advance(Context& ctx, Output& out, int64_t now_ns) = 0;
  virtual void flush(Context& ctx, Output& out) = 0;

  // What inspect() is asked for.
  struct InspectQuery {
    // Only groups whose group_by field has this text, e.g. {{"username", "ann"}}.
    std::vector<std::pair<std::string, std::string>> where;
    int64_t from_ns = std::numeric_limits<int64_t>::min();  // windows that end after this
    int64_t to_ns = std::numeric_limits<int64_t>::max();    // windows that start before this
    size_t max_rows = 10'000;
  };
  // Its live state, for the admin API and D-Bus: appends to `out` one event per group of each
  // window it holds (open, and those it keeps after closing them), with the fields of its output
  // plus "state": "open" or "closed", as far as `query` selects them, at most max_rows. Returns
  // false when it has no live state to show (the default). Called by the core on the aggregator's
  // own thread between its other calls, only when someone asks, so it needs no locking and costs
  // nothing otherwise; keep it short (the aggregator's input waits meanwhile).
  virtual bool inspect(Context& ctx, const InspectQuery& query, Batch& out) {
    (void)ctx;
    (void)query;
    (void)out;
    return false;
  }
};

enum class SinkStatus { kOk, kRetryable, kPermanent };
struct SinkResult {
  SinkStatus status = SinkStatus::kOk;
  std::string error;
  // With kRetryable: the peer asked for this much quiet (an HTTP Retry-After, a broker's
  // throttle time), in ns. The core waits at least this long before the next attempt, and longer
  // when its backoff says so; 0 leaves the wait to the backoff alone.
  int64_t retry_after_ns = 0;
  static SinkResult ok() { return {}; }
  static SinkResult retryable(std::string e) { return {SinkStatus::kRetryable, std::move(e)}; }
  static SinkResult permanent(std::string e) { return {SinkStatus::kPermanent, std::move(e)}; }
};

// Writes batches out. kOk means the batch is durably taken as far as this sink's policy goes; the
// core then acknowledges it (resolves its acks ok), and fails them on a permanent error.
// Retrying, breaking and spooling are the core's job, not the sink's. The core makes one instance
// per worker unless the component is declared single-worker.
class Sink : public Component {
 public:
  virtual SinkResult write(Context& ctx, const Batch& batch) = 0;
  // Called when input has ended (shutdown), after the last write.
  virtual SinkResult flush(Context&) { return SinkResult::ok(); }
};

}  // namespace ingestd
