#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "graph/model.h"
#include "ingestd/component.h"
#include "reliability/spool.h"
#include "runtime/components.h"
#include "runtime/generation.h"
#include "runtime/metrics.h"

namespace ingestd::runtime {

class ComponentContext;

// Runs a pipeline and moves it, while it runs, to the next configuration: a thread per source, per
// parser and sink worker and per aggregator, plus a shared Boost.Asio io_context pool for
// I/O-bound plugins.
//
// Lifecycle: start() calls every component's start() (sinks first, sources last) and then starts
// the threads; if any start() fails nothing runs. Data then flows until either every source
// returns by itself (a batch job) or request_stop() is called. Both end the same way, in graph
// order: a finished source closes its edges; each stage drains its input queue, then (aggregates)
// flushes its open windows, (sinks) flushes, and closes its own output edges. wait_for() reports
// when every thread has ended. abandon() is for a passed shutdown deadline: every queue discards
// what it holds (counted as shutdown_dropped) and blocked pushes and retries give up, so the
// threads end promptly; data already inside a component's own I/O is beyond its reach.
//
// Reload: apply() moves the running pipeline to a new generation, guided by the graph diff.
// Kept components go on running with their state; only their edges move. Added and replacement
// components are started before anything is rewired, and if one fails to start nothing changes.
// Every producer is then registered on its new edges before it leaves its old ones, so no queue
// that lives on sees its inputs end. Replaced and removed components stop the way a shutdown stops
// them: a source is interrupted, a consumer drains its queue once its old producers have left it,
// flushes (an aggregate emits its open windows) into the consumers the new graph gives its name
// (a removed one into its surviving old consumers), and closes its edges. apply() returns when
// they have all ended, or, past `shutdown_timeout`, after discarding what they still held
// (counted as shutdown_dropped). Nothing in flight is lost or duplicated.
//
// Counters: <c>.events_out for every component (for sinks: events written), <c>.events_in for
// every consumer, <c>.queue_dropped, <c>.shutdown_dropped, <c>.unconsumed (output of a component
// nothing reads), sinks' <c>.failed and <c>.retries, <c>.dead_letters, <c>.acks_unresolved (ack
// holders, AckRefs, that died in the component's hands without a verdict). Counters belong to a
// name and live on across reloads.
//
// Acks (see AckRef): a batch's refs are attributed to the component that holds it (the producer
// until a consumer pops it), and resolved where its journey ends:
// - ok: a sink wrote it (records it dead-lettered itself, durably, included), it was appended to
//   a sink's spool (once: a replayed batch has no refs), or it is empty when pushed (a parser
//   removed every record, each dropped by its on_error policy or durably dead-lettered: nothing
//   is left to deliver, and delivering it again would not help);
// - failed: a permanent sink error or spent retries (dead-lettered), a record a sink could not
//   store in its dead-letter file, a parse() that threw, a queue that dropped it (drop_newest), and
//   whatever the shutdown deadline discards (a queue's contents, a sink waiting to retry, a push
//   into an abandoned queue);
// - failed and counted in acks_unresolved: refs that die without a verdict: the output of a
//   component nothing reads, a batch an aggregator's consume() left refs in or threw on, an
//   aggregate state dropped with its refs (after an error), anything still queued when the
//   runtime is destroyed.
// A reload moves batches on without resolving them: a retired stage drains into its successors,
// and past the deadline its queue discards (failed) as at shutdown.
//
// Sinks: each write goes through the sink's retry policy and circuit breaker (config `retry:`
// and `breaker:`, see reliability/). A retryable error is retried after the policy's backoff
// (counted in <c>.retries) until max_attempts or max_elapsed run out; then, as for a permanent
// error, the batch is dead-lettered, its events counted in <c>.failed and its acks failed. While
// the breaker is open the sink is not called and the batch waits (keeping backpressure); each
// transition of the breaker is logged once and counted in <c>.breaker_opened,
// <c>.breaker_half_open or <c>.breaker_closed. Every wait ends at once on abandon().
//
// Thread-safety: start() and apply() are called from one control thread, one at a time.
// request_stop(), abandon(), reopen(), wait_for(), finished() and stalled() may be called from any
// thread. The destructor joins; call it after wait_for() returned true, or after abandon().
class Runtime {
 public:
  Runtime(Metrics& metrics, const Clock& clock);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  // Called, from the thread that ends last, each time every thread has ended. Set before start().
  void on_finished(std::function<void()> callback) { on_finished_ = std::move(callback); }
  bool start(std::shared_ptr<const Generation> generation, const graph::Model& model,
             std::unique_ptr<Components> components);
  // Moves to `generation`, whose components were built into `components` and whose model was
  // diffed against the running one into `diff`. Returns false with `error` when an added or
  // replacement component failed to start; the running pipeline is then untouched.
  bool apply(std::shared_ptr<const Generation> generation, const graph::Model& model,
             const graph::Diff& diff, std::unique_ptr<Components> components, std::string& error);

  void request_stop();
  void abandon();
  void reopen();
  bool wait_for(int64_t timeout_ns);
  bool finished() const;
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // Names of the components with a thread that has been inside one call of its plugin (a parse, a
  // write, a consume) for longer than `limit_ns`: a wedged pipeline. Waiting on a queue or between
  // retries is not being stuck; sources are not judged (they may wait on I/O for ever).
  std::vector<std::string> stalled(int64_t limit_ns) const;
  // The names of the running components, in graph order.
  std::vector<std::string> components() const;
  // For a process that leaves without its threads (the shutdown deadline passed, or a second
  // signal): counts the events still inside a parse or a sink's write as shutdown_dropped, so
  // that the final counters account for every event. Returns how many there were.
  uint64_t count_in_flight();

  // A sink's circuit breaker changed state: sink name, new state ("closed", "open",
  // "half_open"). Called on the sink's worker thread, after the transition is logged and
  // counted; keep it short. Set before start().
  using BreakerObserver = std::function<void(const std::string& sink, const std::string& state)>;
  void on_breaker_changed(BreakerObserver observer) { on_breaker_changed_ = std::move(observer); }
  // Every sink now: its breaker ("closed", "open", "half_open") and what its spool holds.
  struct SinkState {
    std::string name;
    std::string breaker;
    bool spooling = false;  // it has a spool
    uint64_t spool_events = 0;
    uint64_t spool_bytes = 0;
    uint64_t spool_records = 0;
    int64_t spool_oldest_ns = 0;      // wall clock; 0: nothing pending (Spool::oldest_ns())
    int64_t not_closed_since_ns = 0;  // monotonic: when the breaker left closed; 0 while closed
  };
  std::vector<SinkState> sinks() const;
  // Every component with an input queue (every one but the sources) now: what waits in it and
  // its bounds, in graph order.
  struct QueueState {
    std::string name;
    size_t batches = 0;
    size_t max_batches = 0;
    size_t bytes = 0;
    size_t max_bytes = 0;
  };
  std::vector<QueueState> queues() const;
  // The gauges of the running pipeline, appended as metric families (a Metrics collector):
  // ingestd_component_info, queue depth and bounds, breaker state, spool size and age.
  void collect(std::vector<Family>& out) const;
  // The io_context of the io threads (they run from start() until the destructor).
  boost::asio::io_context& io();

  // The live state of aggregator `name` (Aggregator::inspect()): asked of its own thread, which
  // answers between its calls (within about 100 ms). Thread-safe.
  struct Inspection {
    enum class Status { kOk, kNoSuchAggregator, kNotSupported, kNoAnswer, kFailed };
    Status status = Status::kNoAnswer;
    BatchPtr rows;      // kOk: one event per group and window
    std::string error;  // kFailed: what inspect() threw
  };
  Inspection inspect(const std::string& name, const Aggregator::InspectQuery& query,
                     int64_t timeout_ns);

 private:
  friend class ComponentContext;
  struct Stage;
  struct Worker;

  std::unique_ptr<Stage> make_stage(std::shared_ptr<const Generation> generation,
                                    std::unique_ptr<Built> built);
  bool start_instances(Stage& stage, std::string& error);
  void launch(Stage& stage);
  void run_source(Stage& stage, Worker& worker);
  void run_parser(Stage& stage, Worker& worker, Component& instance);
  void run_aggregator(Stage& stage, Worker& worker);
  // Answers the inspect() questions waiting for an aggregator (as not running when null).
  static void answer_questions(Stage& stage, Aggregator* aggregator);
  void run_sink(Stage& stage, Worker& worker, Component& instance);
  void write_to_sink(Stage& stage, Worker& worker, Sink& sink, BatchPtr batch);
  SinkResult call_sink(Stage& stage, Worker& worker, Sink& sink, const Batch& batch,
                       uint64_t& set_aside, bool& lost);
  bool open_spool(Stage& stage, Stage* predecessor, std::string& error);
  void spool_batch(Stage& stage, Worker& worker, Sink& sink, BatchPtr batch);
  int64_t replay(Stage& stage, Worker& worker, Sink& sink);
  static BatchPtr join(std::vector<reliability::Spool::Claim>& claims);
  void drain_spool(Stage& stage, Worker& worker, Sink& sink);
  void sync_spool(Stage& stage);
  void count_spool_corrupt(Stage& stage);
  void check_replay_rate(Stage& stage, int64_t now_ns);
  bool abandoned() const;
  void fail_batch(Stage& stage, Batch& batch, const std::string& reason);
  void drop_batch(Stage& stage, Batch& batch);
  void worker_done(Stage& stage);
  void thread_done();
  bool wait_stop_for(const std::atomic<bool>& stop, int64_t timeout_ns);  // true once stopping
  bool wait_abandon_for(int64_t timeout_ns);                              // true once abandoned
  bool wait_stages_done(const std::vector<Stage*>& stages, int64_t timeout_ns);

  Metrics& metrics_;
  const Clock& clock_;
  std::shared_ptr<const Generation> generation_;  // the current one
  std::vector<std::unique_ptr<Stage>> stages_;    // the running pipeline, in graph order
  std::vector<std::unique_ptr<Stage>> retired_;   // stopped by a reload, not yet ended

  struct Io;
  std::unique_ptr<Io> io_;

  mutable std::mutex mu_;  // guards the members below and the stage lists' membership
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  bool abandoned_ = false;
  int running_ = 0;
  int waiting_drains_ = 0;  // sinks whose inputs ended, waiting on an open breaker to drain
  std::function<void()> on_finished_;
  BreakerObserver on_breaker_changed_;
};

}  // namespace ingestd::runtime
