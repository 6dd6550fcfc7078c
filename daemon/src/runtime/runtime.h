#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/config.h"
#include "ingestd/component.h"
#include "runtime/graph.h"
#include "runtime/metrics.h"

namespace ingestd::runtime {

class ComponentContext;

// Runs a built graph: a thread per source, per parser and sink worker and per aggregator, plus a
// shared Boost.Asio io_context pool for I/O-bound plugins.
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
// Counters: <c>.events_out for every component (for sinks: events written), <c>.events_in for
// every consumer, <c>.queue_dropped, <c>.shutdown_dropped, <c>.unconsumed (output of a component
// nothing reads), sinks' <c>.failed and <c>.retries, <c>.dead_letters.
//
// Thread-safety: request_stop(), abandon(), reopen(), wait_for() and finished() may be called from
// any thread (the control layer's signal handling). The destructor joins; call it after wait_for()
// returned true, or after abandon().
class Runtime {
 public:
  Runtime(const config::Pipeline& pipeline, Graph& graph, Metrics& metrics, const Clock& clock);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  // Called once, from the thread that ends last, when every thread has ended. Set before start().
  void on_finished(std::function<void()> callback) { on_finished_ = std::move(callback); }
  bool start();
  void request_stop();
  void abandon();
  void reopen();
  bool wait_for(int64_t timeout_ns);
  bool finished() const;
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

 private:
  friend class ComponentContext;
  struct Stage;

  void run_source(Stage& stage);
  void run_parser(Stage& stage, Component& instance);
  void run_aggregator(Stage& stage);
  void run_sink(Stage& stage, Component& instance);
  void write_to_sink(Stage& stage, Sink& sink, BatchPtr batch);
  void worker_done(Stage& stage);
  void thread_done();
  bool wait_stop_for(int64_t timeout_ns);     // true once stopping
  bool wait_abandon_for(int64_t timeout_ns);  // true once abandoned

  const config::Pipeline& pipeline_;
  Graph& graph_;
  Metrics& metrics_;
  const Clock& clock_;
  std::vector<std::unique_ptr<Stage>> stages_;

  struct Io;
  std::unique_ptr<Io> io_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopping_{false};
  bool abandoned_ = false;
  int running_ = 0;
  std::vector<std::thread> threads_;
  std::function<void()> on_finished_;
};

}  // namespace ingestd::runtime
