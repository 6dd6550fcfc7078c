#include "runtime/runtime.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "ingestd/json.h"
#include "reliability/breaker.h"
#include "reliability/dead_letter.h"
#include "reliability/retry.h"
#include "reliability/spool.h"
#include "reliability/token_bucket.h"

namespace ingestd::runtime {

namespace {

constexpr int64_t kTickNs = 100'000'000;          // aggregators advance at least this often
constexpr int64_t kRateLimitNs = 10'000'000'000;  // repeated warnings at most this often
constexpr int64_t kRateCheckNs = 30'000'000'000;  // a spool that grew for this long gets a warning
// Records this thread set aside through Context::dead_letter() (stored or lost): how the core
// learns how many events of a batch a sink wrote when it dead-lettered some and returned ok.
thread_local uint64_t t_set_aside = 0;
// Of those, the records that could not be stored: a sink's batch that lost one fails its acks.
thread_local uint64_t t_lost = 0;

constexpr int64_t kSpillAfterNs = 1'000'000'000;  // a sink's queue full this long: it is behind

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

struct Runtime::Io {
  boost::asio::io_context context;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::vector<std::thread> threads;
};

// What the core gives one component (shared by its worker instances).
class ComponentContext final : public Context {
 public:
  ComponentContext(Runtime& rt, const Generation& generation, const config::ComponentConfig& c,
                   const std::atomic<bool>& stop)
      : rt_(rt),
        pipeline_(generation.pipeline),
        config_(c),
        stop_(stop),
        label_(fmt::format("{}.{}", config::section_name(c.kind), c.name)),
        dead_letters_(rt.metrics_.counter(c.name + ".dead_letters")),
        dead_letter_lost_(rt.metrics_.counter(c.name + ".dead_letter_lost")),
        dead_letter_file_(
            std::filesystem::path(pipeline_.data_dir) / "dead_letter" / (c.name + ".jsonl"), c.name,
            rt.clock_) {}

  std::string_view name() const override { return config_.name; }
  void log(LogLevel level, std::string_view message) override {
    spdlog::log(to_spdlog(level), "[{}] {}", label_, message);
  }
  Counter& counter(std::string_view name) override {
    return rt_.metrics_.counter(fmt::format("{}.{}", config_.name, name));
  }
  const Clock& clock() const override { return rt_.clock_; }
  boost::asio::io_context& io() override { return rt_.io_->context; }
  BatchLimits batch_limits() const override { return pipeline_.batch; }
  // The whole runtime stops, or a reload stops this component.
  bool stopping() const override { return rt_.stopping() || stop_.load(std::memory_order_acquire); }
  bool wait_for_stop(int64_t timeout_ns) override { return rt_.wait_stop_for(stop_, timeout_ns); }

  bool dead_letter(std::string_view raw, std::string_view reason) override {
    ++t_set_aside;
    std::string error;
    if (dead_letter_file_.write(raw, reason, error)) {
      dead_letters_.add();
      return true;
    }
    ++t_lost;
    dead_letter_lost_.add();
    log_limited(LogLevel::kError, "dead_letter.write",
                fmt::format("a record is lost: {} (reason it was rejected: {})", error, reason));
    return false;
  }
  std::string state_dir() override {
    auto dir = std::filesystem::path(pipeline_.data_dir) / "state" / config_.name;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      log(LogLevel::kError,
          fmt::format("cannot create its state directory {}: {}", dir.string(), ec.message()));
      return {};
    }
    return dir.string() + "/";
  }
  void reopen_dead_letters() { dead_letter_file_.reopen(); }
  Output* side_output(std::string_view name) override {
    auto it = side_outputs_.find(name);
    return it == side_outputs_.end() ? nullptr : it->second;
  }
  // Before the component starts (read-only after).
  void add_side_output(const std::string& name, Output* out) { side_outputs_[name] = out; }

  void gauges(std::string_view family, std::string_view help, GaugeCollector collect) override {
    const bool valid = !family.empty() && family[0] >= 'a' && family[0] <= 'z' &&
                       std::all_of(family.begin(), family.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                       });
    if (!valid)
      throw std::invalid_argument(
          fmt::format("gauge family \"{}\" is not [a-z][a-z0-9_]*", family));
    std::lock_guard lock(gauges_mu_);
    gauges_.push_back({fmt::format("ingestd_{}", family), std::string(help), std::move(collect)});
  }
  // Calls every collector of this component, appending its samples (labelled with the component)
  // to the family of that name in `families`, which it adds when missing (see Runtime::collect).
  void collect_gauges(
      const std::function<Family&(const std::string&, const std::string&)>& family) {
    std::lock_guard lock(gauges_mu_);
    std::vector<GaugeSample> samples;
    for (const PluginGauge& g : gauges_) {
      samples.clear();
      g.collect(samples);
      Family& f = family(g.family, g.help);
      for (GaugeSample& sample : samples) {
        Labels labels = {{"component", config_.name}};
        for (auto& label : sample.labels) labels.push_back(std::move(label));
        f.samples.push_back({std::move(labels), sample.value, {}});
      }
    }
  }

  // A message from one place in the core (`place`: a fixed name), logged at most once per
  // kRateLimitNs for that place, with the number suppressed since: a failure repeated per batch
  // gives a line every 10 s, and a different failure is never hidden behind it.
  void log_limited(LogLevel level, std::string_view place, const std::string& message) {
    int64_t now = rt_.clock_.monotonic_ns();
    std::lock_guard lock(limit_mu_);
    auto [it, first] = limits_.try_emplace(std::string(place));
    Limit& limit = it->second;
    if (!first && now - limit.last_ns < kRateLimitNs) {
      ++limit.suppressed;
      return;
    }
    if (limit.suppressed > 0)
      log(level, fmt::format("{} (suppressed {} more like it)", message, limit.suppressed));
    else
      log(level, message);
    limit.last_ns = now;
    limit.suppressed = 0;
  }

 private:
  Runtime& rt_;
  const config::Pipeline& pipeline_;
  const config::ComponentConfig& config_;
  const std::atomic<bool>& stop_;
  std::string label_;
  Counter& dead_letters_;
  Counter& dead_letter_lost_;  // records that could not be stored: lost, with their acks failed
  reliability::DeadLetterFile dead_letter_file_;
  struct Limit {
    int64_t last_ns = 0;
    uint64_t suppressed = 0;
  };
  std::mutex limit_mu_;
  std::map<std::string, Limit, std::less<>> limits_;
  std::map<std::string, Output*, std::less<>> side_outputs_;  // the stage's side ports
  struct PluginGauge {
    std::string family;  // with the ingestd_ prefix
    std::string help;
    GaugeCollector collect;
  };
  std::mutex gauges_mu_;
  std::vector<PluginGauge> gauges_;  // gauges_mu_
};

// One thread of a stage. `busy_since` is the monotonic time at which the thread entered a call of
// its plugin, or 0 while it waits (on a queue, or between retries): what stalled() judges.
struct Runtime::Worker {
  std::thread thread;
  std::atomic<int64_t> busy_since{0};
  std::atomic<uint64_t> in_flight{0};              // parsers and sinks: events of the batch in hand
  std::mt19937_64 random{std::random_device{}()};  // sinks: the retry jitter of this thread
};

namespace {

// Marks a worker busy for the scope of one plugin call.
// With a histogram, also times the call into it (one more clock read per batch).
class Busy {
 public:
  Busy(std::atomic<int64_t>& since, const Clock& clock, Histogram* latency = nullptr)
      : since_(since), clock_(clock), latency_(latency), start_(clock.monotonic_ns()) {
    since_.store(start_, std::memory_order_relaxed);
  }
  ~Busy() {
    since_.store(0, std::memory_order_relaxed);
    if (latency_) latency_->observe_ns(clock_.monotonic_ns() - start_);
  }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  std::atomic<int64_t>& since_;
  const Clock& clock_;
  Histogram* latency_;
  const int64_t start_;
};

// Marks a worker's batch as in its hands for a scope (see Runtime::count_in_flight()).
class InFlight {
 public:
  InFlight(std::atomic<uint64_t>& events, uint64_t n) : events_(events) {
    events_.store(n, std::memory_order_relaxed);
  }
  ~InFlight() { events_.store(0, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<uint64_t>& events_;
};

}  // namespace

// A component at run time: its instances, context, counters, threads and where its output goes.
struct Runtime::Stage final : public Output {
  Stage(Runtime& rt, std::shared_ptr<const Generation> gen, std::unique_ptr<Built> b)
      : observer(rt.on_breaker_changed_),
        generation(std::move(gen)),
        built(std::move(b)),
        config(*built->config),
        context(rt, *generation, config, stop),
        events_in(counter_if(rt, config.kind != Kind::kSource, "events_in")),
        events_out(counter_if(rt, true, "events_out")),
        unconsumed(counter_if(rt, config.kind != Kind::kSink, "unconsumed")),
        acks_unresolved(counter_if(rt, true, "acks_unresolved")),
        failed(
            counter_if(rt, config.kind == Kind::kParser || config.kind == Kind::kSink, "failed")),
        retries(counter_if(rt, config.kind == Kind::kSink, "retries")),
        shutdown_dropped(counter_if(rt, config.kind != Kind::kSource, "shutdown_dropped")),
        breaker_opened(counter_if(rt, config.kind == Kind::kSink, "breaker_opened")),
        breaker_half_open(counter_if(rt, config.kind == Kind::kSink, "breaker_half_open")),
        breaker_closed(counter_if(rt, config.kind == Kind::kSink, "breaker_closed")),
        breaker(config.breaker, [this](reliability::BreakerState from, reliability::BreakerState to,
                                       const std::string& why) { breaker_changed(from, to, why); }),
        spooled(counter_if(rt, spools(), "spooled")),
        replayed(counter_if(rt, spools(), "replayed")),
        spool_dropped(counter_if(rt, spools(), "spool_dropped")),
        spool_corrupt(counter_if(rt, spools(), "spool_corrupt")),
        batches_in(labelled(rt, config.kind != Kind::kSource, "ingestd_component_batches_in")),
        bytes_in(labelled(rt, config.kind != Kind::kSource, "ingestd_component_bytes_in")),
        batches_out(labelled(rt, true, "ingestd_component_batches_out")),
        bytes_out(labelled(rt, true, "ingestd_component_bytes_out")),
        latency(config.kind == Kind::kSource
                    ? nullptr
                    : &rt.metrics_.histogram("ingestd_component_batch_duration_seconds",
                                             {{"component", config.name}})),
        bucket(config.spool.replay_rate, std::max<uint64_t>(config.spool.replay_rate / 4, 1)),
        replay_retry_config(unlimited(config.retry)) {
    for (const auto& port : config.side_outputs) {
      auto& p = sides[port] = std::make_unique<Port>(
          *this, rt.metrics_.counter(fmt::format("{}.{}.events_out", config.name, port)));
      context.add_side_output(port, p.get());
    }
  }

  bool spools() const { return config.kind == Kind::kSink && config.spool.enabled; }
  // Replay retries the same spooled batch until the peer takes it: the spool holds it meanwhile.
  static config::RetryConfig unlimited(config::RetryConfig retry) {
    retry.max_attempts = 0;
    retry.max_elapsed_ns = 0;
    return retry;
  }

  // Counts and logs, once each, a transition of the sink's breaker.
  void breaker_changed(reliability::BreakerState from, reliability::BreakerState to,
                       const std::string& why) {
    using reliability::BreakerState;
    Counter& counter = to == BreakerState::kOpen       ? breaker_opened
                       : to == BreakerState::kHalfOpen ? breaker_half_open
                                                       : breaker_closed;
    counter.add();
    if (to == BreakerState::kClosed)
      not_closed_since.store(0, std::memory_order_relaxed);
    else if (from == BreakerState::kClosed)
      not_closed_since.store(context.clock().monotonic_ns(), std::memory_order_relaxed);
    context.log(to == BreakerState::kOpen ? LogLevel::kWarn : LogLevel::kInfo,
                fmt::format("circuit breaker {} -> {}: {}", reliability::state_name(from),
                            reliability::state_name(to), why));
    if (observer) observer(config.name, reliability::state_name(to));
  }

  // A registered counter where it means something for this kind, else a private unused one.
  Counter& counter_if(Runtime& rt, bool wanted, std::string_view name) {
    return wanted ? rt.metrics_.counter(fmt::format("{}.{}", config.name, name)) : unused;
  }
  // The same for the labelled families only the admin server exports (see Runtime::Runtime()).
  Counter& labelled(Runtime& rt, bool wanted, std::string_view family) {
    return wanted ? rt.metrics_.counter(family, {{"component", config.name}}) : unused;
  }
  // A batch taken from the input queue (its events are counted in events_in).
  void count_batch_in(const Batch& batch) {
    batches_in.add();
    bytes_in.add(batch.bytes());
  }

  // One output of the stage, with its consumers: the main one (the stage as an Output is it) or
  // a side output (SideOutputSpec, Context::side_output()). Fan-out: every consumer but the last
  // gets a clone; the last gets the batch itself.
  //
  // Wiring. The port counts as a producer on each of its consumers' queues from the moment it is
  // wired to them until it is rewired away or its stage's last worker ends (`closed`). A
  // rewiring is staged (registered on the new queues), then published once every port has
  // staged its own; whoever next holds out_mu adopts it and leaves the old queues: the rewiring
  // itself when no push is under way, else that push when it ends. So a push blocked on a full
  // queue never blocks a reload, and no queue that lives on sees its producers run out in
  // between.
  struct Port final : public Output {
    Port(Stage& s, Counter& out) : owner(s), events_out(out) {}
    bool push(BatchPtr batch) override { return offer(batch, true) != PushResult::kStopped; }
    PushResult try_push(BatchPtr& batch) override { return offer(batch, false); }

    // The producer's end: its consumers' queues no longer wait for it. Its workers' end implies it.
    void close() override {
      std::lock_guard out_lock(out_mu);
      std::lock_guard lock(wire_mu);
      closed = true;
      release(outputs);
      release(next);
      release(staged);
      has_next = has_staged = false;
    }

    // push() (wait) and try_push() (all or nothing, never waiting for room). The batch's refs are
    // this component's until a consumer takes them: an output nothing reads lets them die
    // unresolved (failed, counted in acks_unresolved).
    PushResult offer(BatchPtr& batch, bool wait) {
      batch->attribute_acks(&owner.acks_unresolved);
      BatchPtr done;  // destroyed after out_mu is released: ack callbacks may run
      if (batch->empty()) {
        batch->resolve_acks(true);  // nothing left to deliver (see Parser)
        done = std::move(batch);
        return PushResult::kOk;
      }
      std::lock_guard lock(out_mu);
      adopt_rewiring();
      PushResult result = PushResult::kOk;
      const size_t n = batch->size();
      const size_t b = batch->bytes();
      auto count_out = [&] {
        events_out.add(n);
        owner.batches_out.add();
        owner.bytes_out.add(b);
      };
      if (outputs.empty()) {  // nothing reads it (pushed after close(): refused)
        count_out();
        owner.unconsumed.add(n);
        done = std::move(batch);
        if (closed_locked()) result = PushResult::kStopped;
      } else if (wait) {
        count_out();
        std::vector<BatchPtr> copies = Batch::fan_out(std::move(batch), outputs.size());
        for (size_t i = 0; i < outputs.size(); ++i) {
          if (outputs[i]->take(std::move(copies[i])) == BatchQueue::PushResult::kAbandoned)
            result = PushResult::kStopped;
        }
      } else {
        result = try_fan_out(batch);
        if (result != PushResult::kFull) count_out();
      }
      adopt_rewiring();  // one that came while the batch was being pushed
      return result;
    }

    // Under out_mu: room in every consumer's queue first (a sink that has fallen behind takes the
    // batch into its spool instead), then a copy into each. Nothing is pushed when any has no room.
    PushResult try_fan_out(BatchPtr& batch) {
      const size_t b = batch->bytes();
      const int64_t now = owner.context.clock().monotonic_ns();
      struct Slot {
        BatchQueue::Reservation room;
        bool spill = false;
      };
      std::vector<Slot> slots(outputs.size());
      size_t i = 0;
      BatchQueue::PushResult r = BatchQueue::PushResult::kOk;
      for (; i < outputs.size(); ++i) {
        Stage& c = *outputs[i];
        r = c.input().try_reserve(b, slots[i].room);
        if (r == BatchQueue::PushResult::kOk) {
          c.full_since.store(0, std::memory_order_relaxed);
          continue;
        }
        if (r == BatchQueue::PushResult::kTimedOut && c.spool && c.spill_due(now)) {
          slots[i].spill = true;
          continue;
        }
        break;
      }
      if (i < outputs.size()) {
        for (size_t j = 0; j < i; ++j) outputs[j]->input().cancel(slots[j].room);
        if (r == BatchQueue::PushResult::kTimedOut) return PushResult::kFull;
        outputs[i]->input().push(std::move(batch));  // abandoned: discards and counts it
        return PushResult::kStopped;
      }
      PushResult result = PushResult::kOk;
      std::vector<BatchPtr> copies = Batch::fan_out(std::move(batch), outputs.size());
      for (i = 0; i < outputs.size(); ++i) {
        Stage& c = *outputs[i];
        BatchPtr& copy = copies[i];
        if (slots[i].spill) {
          if (c.spill(copy)) continue;
          if (c.input().push(std::move(copy)) == BatchQueue::PushResult::kAbandoned)
            result = PushResult::kStopped;
          continue;
        }
        if (c.input().push_reserved(std::move(copy), slots[i].room) ==
            BatchQueue::PushResult::kAbandoned)
          result = PushResult::kStopped;
      }
      return result;
    }

    // Waits, under out_mu, until every consumer's queue has room (or a spooling sink would take the
    // batch into its spool), in slices so that a stop is noticed.
    bool wait_writable(int64_t timeout_ns) override {
      const Clock& clock = owner.context.clock();
      const int64_t deadline = clock.monotonic_ns() + timeout_ns;
      std::lock_guard lock(out_mu);
      adopt_rewiring();
      bool ready = true;
      for (Stage* c : outputs) {
        for (;;) {
          int64_t now = clock.monotonic_ns();
          if (c->input().wait_writable(0) || (c->spool && c->spill_due(now))) break;
          if (now >= deadline || owner.context.stopping()) {
            ready = false;
            break;
          }
          c->input().wait_writable(std::min(deadline - now, kTickNs));
        }
        if (!ready) break;
      }
      adopt_rewiring();
      return ready;
    }

    bool closed_locked() {
      std::lock_guard lock(wire_mu);
      return closed;
    }

    // Under out_mu: switches to a published rewiring, leaving the old consumers' queues.
    void adopt_rewiring() {
      std::lock_guard lock(wire_mu);
      if (!has_next) return;
      has_next = false;
      std::swap(outputs, next);
      release(next);
    }

    static void release(std::vector<Stage*>& queues) {
      for (Stage* out : queues) out->input().producer_done();
      queues.clear();
    }

    // Registers the port on its new consumers' queues (see Wiring).
    void stage(const std::vector<Stage*>& consumers) {
      std::lock_guard lock(wire_mu);
      if (closed) return;  // it will push no more
      for (Stage* out : consumers) out->input().add_producer();
      if (has_staged) release(staged);
      staged = consumers;
      has_staged = true;
      wired = consumers;
    }
    // Makes the staged consumers the next ones, adopted now unless a push is under way.
    void publish() {
      {
        std::lock_guard lock(wire_mu);
        if (!has_staged) return;
        if (has_next) release(next);
        next = std::move(staged);
        staged.clear();
        has_staged = false;
        has_next = true;
      }
      std::unique_lock lock(out_mu, std::try_to_lock);
      if (lock.owns_lock()) adopt_rewiring();
    }

    Stage& owner;
    Counter& events_out;          // the stage's for the main output; side outputs count apart
    std::mutex out_mu;            // held by push() for a whole fan-out
    std::vector<Stage*> outputs;  // under out_mu: what push() fans out to
    std::mutex wire_mu;           // guards the members below; taken after out_mu, never before
    std::vector<Stage*> wired;    // the outputs it has or will have once it adopts
    std::vector<Stage*> staged;   // registered, not yet published
    std::vector<Stage*> next;     // published, not yet adopted
    bool has_staged = false;
    bool has_next = false;
    bool closed = false;
  };

  bool push(BatchPtr batch) override { return main.push(std::move(batch)); }
  PushResult try_push(BatchPtr& batch) override { return main.try_push(batch); }
  bool wait_writable(int64_t timeout_ns) override { return main.wait_writable(timeout_ns); }
  // Every port: the stage will push no more.
  void close() override {
    main.close();
    for (auto& [_, port] : sides) port->close();
  }

  // A batch from upstream into this stage's queue. A sink with a spool that has fallen behind
  // (its queue stayed full for kSpillAfterNs) takes it into the spool instead, at once while it
  // stays behind, so that one slow sink never holds up the others of a fan-out.
  BatchQueue::PushResult take(BatchPtr batch) {
    if (!spool) return input().push(std::move(batch));
    bool was_behind = behind.load(std::memory_order_relaxed);
    auto r = input().push_for(batch, was_behind ? 0 : kSpillAfterNs);
    if (r != BatchQueue::PushResult::kTimedOut) {
      if (was_behind) behind.store(false, std::memory_order_relaxed);
      return r;
    }
    if (spill(batch)) return BatchQueue::PushResult::kOk;
    return input().push(std::move(batch));
  }

  // A spooling sink whose queue has no room: whether try_push() should spill into the spool, i.e.
  // the queue has been found full for kSpillAfterNs (or the sink is behind already).
  bool spill_due(int64_t now) {
    if (behind.load(std::memory_order_relaxed)) return true;
    int64_t since = 0;
    if (full_since.compare_exchange_strong(since, now, std::memory_order_relaxed)) return false;
    return now - since >= kSpillAfterNs;
  }

  // Appends the batch to the spool, where it is acknowledged; false (the batch still the
  // caller's) when the spool cannot take it.
  bool spill(BatchPtr& batch) {
    const size_t n = batch->size();
    const size_t b = batch->bytes();
    reliability::Spool::AppendResult a = spool->append(*batch);
    spool_dropped.add(a.dropped_events);
    if (a.status != reliability::Spool::AppendStatus::kOk) return false;
    if (!behind.exchange(true, std::memory_order_relaxed))
      context.log_limited(LogLevel::kWarn, "spool.behind",
                          "falling behind: its queue stayed full, so batches go to the spool");
    full_since.store(0, std::memory_order_relaxed);
    events_in.add(n);
    batches_in.add();
    bytes_in.add(b);
    spooled.add(n);
    batch->resolve_acks(true);  // durable once appended; a replay does not acknowledge again
    batch.reset();
    return true;
  }

  BatchQueue& input() { return *built->input; }
  Kind kind() const { return config.kind; }
  const std::string& name() const { return config.name; }

  const BreakerObserver& observer;
  // Declared first: the components (in `built`) go before their config and plugin code.
  std::shared_ptr<const Generation> generation;
  std::unique_ptr<Built> built;
  const config::ComponentConfig& config;
  std::atomic<bool> stop{false};  // a reload stops this component
  ComponentContext context;
  Counter unused;
  Counter& events_in;
  Counter& events_out;
  Counter& unconsumed;
  Counter& acks_unresolved;   // ack holders this component dropped without a verdict (failed)
  Counter& failed;            // parsers and sinks: events lost to an error the component reported
  Counter& retries;           // sinks
  Counter& shutdown_dropped;  // consumers: what the shutdown deadline discarded
  Counter& breaker_opened;    // sinks: transitions of the breaker
  Counter& breaker_half_open;
  Counter& breaker_closed;
  reliability::CircuitBreaker breaker;       // sinks: shared by the workers
  std::atomic<int64_t> not_closed_since{0};  // monotonic: the breaker left closed; 0 while closed

  // Sinks with a spool (see run_sink()). A replacement after a reload shares its predecessor's.
  std::shared_ptr<reliability::Spool> spool;
  Counter& spooled;        // events appended to the spool (acknowledged there)
  Counter& replayed;       // events delivered from the spool (also in events_out)
  Counter& spool_dropped;  // events `when_full: drop_oldest` deleted unsent
  Counter& spool_corrupt;  // damaged records skipped, on recovery or on read
  Counter& batches_in;     // labelled, for the admin server only
  Counter& bytes_in;
  Counter& batches_out;
  Counter& bytes_out;
  Histogram* latency;                      // consumers: the time of each plugin call on a batch
  std::atomic<bool> spool_blocked{false};  // the spool refused the last append (logged once)
  std::atomic<bool> behind{false};         // take() spills into the spool without waiting
  std::atomic<int64_t> full_since{0};      // try_push() found the queue full since (monotonic)
  std::atomic<int64_t> last_sync_ns{0};
  std::atomic<bool> retiring{false};  // a reload retires it: leave the spool to the successor
  std::mutex replay_mu;               // one worker replays at a time; guards the members below
  reliability::TokenBucket bucket;    // replay_rate
  const config::RetryConfig replay_retry_config;
  std::mt19937_64 replay_random{std::random_device{}()};
  std::optional<reliability::RetryPolicy> replay_retry;  // while replay is failing
  int64_t replay_not_before = 0;
  uint64_t corrupt_seen = 0;  // spool totals().corrupt_records already counted
  int64_t rate_check_ns = 0;  // check_replay_rate(): the last look
  uint64_t rate_check_pending = 0;
  uint64_t rate_check_in = 0;
  uint64_t rate_check_replayed = 0;

  // Wiring: the main output (what push() goes to) and the side outputs its options turn on.
  Port main{*this, events_out};
  std::map<std::string, std::unique_ptr<Port>, std::less<>> sides;

  // Aggregators: inspect() questions, answered by its thread between calls (answer_questions()).
  struct Question {
    Aggregator::InspectQuery query;
    std::promise<Inspection> answer;
  };
  std::mutex questions_mu;
  std::vector<std::shared_ptr<Question>> questions;  // under questions_mu
  std::atomic<bool> asked{false};                    // questions is not empty
  bool answering = true;  // under questions_mu: false once its thread has ended

  // Parsers with several workers hand their batches on in the order they took them (see
  // run_parser()): a ticket per batch, taken with the batch, and the ticket whose turn it is.
  std::mutex take_mu;        // held across a pop, so that tickets follow the queue's order
  uint64_t next_ticket = 0;  // under take_mu
  std::mutex turn_mu;
  std::condition_variable turn_cv;
  uint64_t turn = 0;  // under turn_mu

  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int> workers_left{0};
  bool launched = false;  // under Runtime::mu_
  bool ended = false;     // under Runtime::mu_: every worker has returned
};

Runtime::Runtime(Metrics& metrics, const Clock& clock)
    : metrics_(metrics), clock_(clock), io_(new Io) {
  using M = MetricType;
  metrics_.describe("ingestd_component_batches_in", M::kCounter,
                    "Batches a component took from its input queue.");
  metrics_.describe("ingestd_component_bytes_in", M::kCounter,
                    "Bytes (of batches' arenas) a component took from its input queue.");
  metrics_.describe("ingestd_component_batches_out", M::kCounter,
                    "Batches a component produced (for sinks: batches written).");
  metrics_.describe("ingestd_component_bytes_out", M::kCounter,
                    "Bytes of the batches a component produced (for sinks: wrote).");
  metrics_.describe("ingestd_component_batch_duration_seconds", M::kHistogram,
                    "Time of one plugin call on one batch (parse, consume or a sink's write "
                    "attempt).");
  // The logging registry is created on first use; make that happen here, before any of our
  // threads can log at once.
  spdlog::default_logger_raw();
}

Runtime::~Runtime() {
  for (auto* list : {&stages_, &retired_})
    for (auto& s : *list)
      for (auto& w : s->workers)
        if (w->thread.joinable()) w->thread.join();
  if (io_->guard) io_->guard->reset();
  io_->context.stop();
  for (auto& t : io_->threads) t.join();
}

std::unique_ptr<Runtime::Stage> Runtime::make_stage(std::shared_ptr<const Generation> generation,
                                                    std::unique_ptr<Built> built) {
  return std::make_unique<Stage>(*this, std::move(generation), std::move(built));
}

bool Runtime::open_spool(Stage& s, Stage* predecessor, std::string& error) {
  std::shared_ptr<reliability::Spool> inherited = predecessor ? predecessor->spool : nullptr;
  if (!s.spools()) {
    if (inherited && inherited->events() > 0)
      s.context.log(LogLevel::kWarn,
                    fmt::format("spool is now off: the {} events in {} stay there until it is on "
                                "again",
                                inherited->events(), inherited->dir().string()));
    return true;
  }
  if (inherited) {
    // A changed sink goes on from where its predecessor's spool is (with its size settings,
    // which a restart renews).
    s.spool = std::move(inherited);
    s.corrupt_seen = s.spool->totals().corrupt_records;
    return true;
  }
  auto dir = std::filesystem::path(s.generation->pipeline.data_dir) / "spool" / s.name();
  reliability::Spool::Recovery report;
  std::unique_ptr<reliability::Spool> spool =
      reliability::Spool::open(dir, s.config.spool, clock_, report, error);
  if (!spool) {
    error = fmt::format("sinks.{}: cannot open its spool: {}", s.name(), error);
    return false;
  }
  for (const auto& bad : report.moved_aside)
    s.context.log(LogLevel::kError, fmt::format("spool: moved a damaged segment aside: {}", bad));
  for (const auto& problem : report.problems)
    s.context.log(LogLevel::kWarn, fmt::format("spool: {}", problem));
  if (report.torn_bytes > 0)
    s.context.log(LogLevel::kWarn,
                  fmt::format("spool: truncated a torn tail of {} bytes (an append cut short by a "
                              "crash)",
                              report.torn_bytes));
  if (report.records > 0)
    s.context.log(LogLevel::kInfo, fmt::format("spool: {} events in {} batches to deliver from {}",
                                               report.events, report.records, dir.string()));
  s.spool = std::move(spool);
  count_spool_corrupt(s);
  return true;
}

bool Runtime::start_instances(Stage& s, std::string& error) {
  for (auto& instance : s.built->instances) {
    bool ok = false;
    try {
      ok = instance->start(s.context);
    } catch (const std::exception& e) {
      s.context.log(LogLevel::kError, fmt::format("start failed: {}", e.what()));
    }
    if (!ok) {
      error = fmt::format("{}.{} could not start", config::section_name(s.kind()), s.name());
      return false;
    }
  }
  return true;
}

void Runtime::launch(Stage& s) {
  std::lock_guard lock(mu_);
  s.launched = true;
  s.workers_left = static_cast<int>(s.built->instances.size());
  for (auto& instance : s.built->instances) {
    Component* c = instance.get();
    auto& w = *s.workers.emplace_back(std::make_unique<Worker>());
    ++running_;
    switch (s.kind()) {
      case Kind::kSource:
        w.thread = std::thread([this, &s, &w] { run_source(s, w); });
        break;
      case Kind::kParser:
        w.thread = std::thread([this, &s, &w, c] { run_parser(s, w, *c); });
        break;
      case Kind::kAggregator:
        w.thread = std::thread([this, &s, &w] { run_aggregator(s, w); });
        break;
      case Kind::kSink:
        w.thread = std::thread([this, &s, &w, c] { run_sink(s, w, *c); });
        break;
    }
  }
}

bool Runtime::start(std::shared_ptr<const Generation> generation, const graph::Model& model,
                    std::unique_ptr<Components> components) {
  graph::Diff all;
  for (const auto& n : model.nodes()) all.added.push_back(n.name);
  io_->guard.emplace(io_->context.get_executor());
  for (int i = 0; i < generation->pipeline.io_threads; ++i)
    io_->threads.emplace_back([this] { io_->context.run(); });
  std::string error;
  if (apply(std::move(generation), model, all, std::move(components), error)) return true;
  spdlog::error("{}; the pipeline does not run", error);
  return false;
}

bool Runtime::apply(std::shared_ptr<const Generation> generation, const graph::Model& model,
                    const graph::Diff& diff, std::unique_ptr<Components> components,
                    std::string& error) {
  std::map<std::string, Stage*, std::less<>> live;  // by name: the stages of the new graph
  std::map<std::string, Stage*, std::less<>> old;   // by name: the stages running now
  for (auto& s : stages_) old.emplace(s->name(), s.get());

  // 1. Make and start the added and replacement components, sinks first. A failure stops here.
  std::vector<std::unique_ptr<Stage>> fresh;
  for (const auto* names : {&diff.added, &diff.replaced})
    for (const auto& name : *names) fresh.push_back(make_stage(generation, components->take(name)));
  std::sort(fresh.begin(), fresh.end(), [&](const auto& a, const auto& b) {
    return model.position(a->name()) > model.position(b->name());
  });
  for (auto& s : fresh) {
    auto predecessor = old.find(s->name());
    if (!open_spool(*s, predecessor != old.end() ? predecessor->second : nullptr, error))
      return false;
    if (!start_instances(*s, error)) return false;
  }
  for (auto& s : fresh) live.emplace(s->name(), s.get());
  for (const auto& name : diff.kept) live.emplace(name, old.at(name));

  // 2. Wire: each producer joins its new consumers' queues before it leaves its old ones, so a
  // queue that lives on never sees its producers run out in between.
  std::vector<Stage*> retiring;
  for (const auto* names : {&diff.replaced, &diff.removed})
    for (const auto& name : *names) {
      retiring.push_back(old.at(name));
      retiring.back()->retiring.store(true, std::memory_order_release);
    }
  // Each port of a stage (its main output, its side outputs) is wired on its own.
  std::vector<std::pair<Stage::Port*, std::vector<Stage*>>> wiring;
  auto wire_as_in_new = [&](Stage* s) {
    auto consumers = [&](std::string_view port) {
      std::vector<Stage*> out;
      for (const auto& c : model.consumers(s->name(), port)) out.push_back(live.at(c));
      return out;
    };
    wiring.emplace_back(&s->main, consumers(""));
    for (auto& [port, p] : s->sides) wiring.emplace_back(p.get(), consumers(port));
  };
  for (const auto& n : model.nodes()) wire_as_in_new(live.at(n.name));
  for (Stage* s : retiring) {
    if (model.find(s->name())) {
      // Replaced: what it still emits goes where the new graph sends that name's output (a side
      // output the new one has off goes nowhere: counted as unconsumed).
      wire_as_in_new(s);
      continue;
    }
    // Removed: into its old consumers, as they are now (kept, replaced anew, or also retiring).
    auto as_now = [&](Stage::Port& p) {
      std::vector<Stage*> out;
      std::lock_guard lock(p.wire_mu);
      for (Stage* c : p.wired) {
        auto it = live.find(c->name());
        out.push_back(it != live.end() ? it->second : c);
      }
      return out;
    };
    wiring.emplace_back(&s->main, as_now(s->main));
    for (auto& [_, p] : s->sides) wiring.emplace_back(p.get(), as_now(*p));
  }
  for (auto& [p, outputs] : wiring) p->stage(outputs);
  for (auto& [p, outputs] : wiring) p->publish();

  // 3. Swap the stage lists and launch the new stages (they have their producers by now), then
  // stop what the new graph no longer has.
  {
    std::lock_guard lock(mu_);
    std::map<Stage*, std::unique_ptr<Stage>> owned;
    for (auto* list : {&fresh, &stages_})
      for (auto& s : *list) owned.emplace(s.get(), std::move(s));
    std::vector<std::unique_ptr<Stage>> next;
    for (const auto& n : model.nodes()) {
      auto it = owned.find(live.at(n.name));
      next.push_back(std::move(it->second));
      owned.erase(it);
    }
    for (auto& [_, s] : owned) retired_.push_back(std::move(s));  // replaced and removed
    stages_ = std::move(next);
    generation_ = std::move(generation);
  }
  for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) {
    Stage& s = **it;
    if (s.launched) continue;
    if (s.main.wired.empty() && s.kind() != Kind::kSink)
      s.context.log(LogLevel::kWarn,
                    "feeds no component: its output is discarded and counted as unconsumed");
    launch(s);
  }
  for (Stage* s : retiring) {
    if (s->kind() != Kind::kSource) continue;
    {
      std::lock_guard lock(mu_);
      s->stop.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    static_cast<Source&>(*s->built->instances.front()).interrupt();
  }

  // 4. Wait for the retired stages to drain and end; past the deadline, discard what they hold.
  int64_t timeout = generation_->pipeline.shutdown_timeout_ns;
  if (!wait_stages_done(retiring, timeout)) {
    for (Stage* s : retiring)
      if (s->built->input) s->input().abandon();
    if (!wait_stages_done(retiring, timeout)) {
      spdlog::error("components removed by the reload did not end; they are left behind");
      return true;
    }
  }
  // Joined outside mu_: an ended worker may still be on its way out through thread_done().
  std::vector<std::unique_ptr<Stage>> ended;
  {
    std::lock_guard lock(mu_);
    for (auto& s : retired_)
      if (s->ended) ended.push_back(std::move(s));
    retired_.erase(std::remove(retired_.begin(), retired_.end(), nullptr), retired_.end());
  }
  for (auto& s : ended)
    for (auto& w : s->workers) w->thread.join();
  return true;
}

bool Runtime::wait_stages_done(const std::vector<Stage*>& stages, int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] {
    return std::all_of(stages.begin(), stages.end(), [](Stage* s) { return s->ended; });
  });
}

void Runtime::run_source(Stage& s, Worker&) {
  auto& source = static_cast<Source&>(*s.built->instances.front());
  try {
    source.run(s.context, s);
  } catch (const std::exception& e) {
    s.context.log(LogLevel::kError, fmt::format("stopped by an error: {}", e.what()));
  }
  s.context.log(LogLevel::kDebug, "finished");
  worker_done(s);
}

// With several workers, each batch goes on in its turn: the order the workers took the batches
// from the queue, which is the order they arrived in. A worker that finishes early waits for the
// batches taken before its own, so what follows a parser (a file sink, an event-time window)
// sees its input's order whatever the number of workers.
void Runtime::run_parser(Stage& s, Worker& w, Component& instance) {
  auto& parser = static_cast<Parser&>(instance);
  const bool ordered = s.built->instances.size() > 1;
  for (;;) {
    BatchPtr batch;
    uint64_t ticket = 0;
    if (ordered) {
      std::lock_guard lock(s.take_mu);
      batch = s.input().pop();
      if (batch) ticket = s.next_ticket++;
    } else {
      batch = s.input().pop();
    }
    if (!batch) break;
    s.events_in.add(batch->size());
    s.count_batch_in(*batch);
    batch->attribute_acks(&s.acks_unresolved);
    bool parsed = true;
    try {
      InFlight held(w.in_flight, batch->size());
      Busy busy(w.busy_since, clock_, s.latency);
      parser.parse(s.context, *batch);
    } catch (const std::exception& e) {
      parsed = false;
      s.failed.add(batch->size());
      batch->resolve_acks(false);
      s.context.log_limited(LogLevel::kError, "parse",
                            fmt::format("batch of {} events failed: {}", batch->size(), e.what()));
    }
    if (ordered) {
      std::unique_lock lock(s.turn_mu);
      s.turn_cv.wait(lock, [&] { return s.turn == ticket; });
    }
    if (parsed) s.push(std::move(batch));
    if (ordered) {
      {
        std::lock_guard lock(s.turn_mu);
        ++s.turn;
      }
      s.turn_cv.notify_all();
    }
  }
  worker_done(s);
}

void Runtime::run_aggregator(Stage& s, Worker& w) {
  auto& agg = static_cast<Aggregator&>(*s.built->instances.front());
  try {
    for (;;) {
      BatchPtr batch = s.input().pop_for(kTickNs);
      if (batch) {
        s.events_in.add(batch->size());
        s.count_batch_in(*batch);
        // Its refs move into the aggregate's state; any left in the batch, or lost with the
        // state to an exception, fail and are counted here.
        batch->attribute_acks(&s.acks_unresolved);
        Busy busy(w.busy_since, clock_, s.latency);
        agg.consume(s.context, *batch);
      } else if (s.input().ended()) {
        break;
      }
      agg.advance(s.context, s, clock_.now_ns());
      if (s.asked.load(std::memory_order_acquire)) answer_questions(s, &agg);
    }
    agg.flush(s.context, s);
  } catch (const std::exception& e) {
    s.context.log(LogLevel::kError, fmt::format("stopped by an error: {}", e.what()));
  }
  answer_questions(s, nullptr);
  worker_done(s);
}

void Runtime::answer_questions(Stage& s, Aggregator* agg) {
  std::vector<std::shared_ptr<Stage::Question>> questions;
  {
    std::lock_guard lock(s.questions_mu);
    questions.swap(s.questions);
    s.asked.store(false, std::memory_order_release);
    if (!agg) s.answering = false;
  }
  for (auto& q : questions) {
    Inspection answer;
    if (!agg) {
      answer.status = Inspection::Status::kNoAnswer;
    } else {
      auto rows = std::make_unique<Batch>();
      try {
        if (agg->inspect(s.context, q->query, *rows)) {
          answer.status = Inspection::Status::kOk;
          answer.rows = std::move(rows);
        } else {
          answer.status = Inspection::Status::kNotSupported;
        }
      } catch (const std::exception& e) {
        answer.status = Inspection::Status::kFailed;
        answer.error = e.what();
      }
    }
    q->answer.set_value(std::move(answer));
  }
}

Runtime::Inspection Runtime::inspect(const std::string& name, const Aggregator::InspectQuery& query,
                                     int64_t timeout_ns) {
  auto q = std::make_shared<Stage::Question>();
  q->query = query;
  std::future<Inspection> answer = q->answer.get_future();
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(stages_.begin(), stages_.end(), [&](const auto& s) {
      return s->name() == name && s->kind() == Kind::kAggregator;
    });
    if (it == stages_.end()) return {.status = Inspection::Status::kNoSuchAggregator};
    Stage& s = **it;
    std::lock_guard questions_lock(s.questions_mu);
    if (!s.answering) return {};
    s.questions.push_back(q);
    s.asked.store(true, std::memory_order_release);
  }
  // The question holds its promise: it is answered, or dropped unanswered with the stage.
  if (answer.wait_for(std::chrono::nanoseconds(timeout_ns)) != std::future_status::ready) return {};
  try {
    return answer.get();
  } catch (const std::future_error&) {
    return {};
  }
}

void Runtime::run_sink(Stage& s, Worker& w, Component& instance) {
  auto& sink = static_cast<Sink&>(instance);
  for (;;) {
    BatchPtr batch;
    if (!s.spool) {
      batch = s.input().pop();
      if (!batch) break;
    } else {
      int64_t wait = replay(s, w, sink);
      sync_spool(s);
      // Ordered replay: what arrives meanwhile goes behind the spool at once, not into a wait.
      batch = s.input().pop_for(wait == 0 ? 0 : std::min(wait, kTickNs));
      if (!batch) {
        if (!s.input().ended()) continue;
        // A batch job whose input ended: deliver what it spooled while the peer takes it. A
        // shutdown, or a sink a reload retires, leaves it on disk for the next run.
        if (!s.retiring.load(std::memory_order_acquire) && !stopping()) drain_spool(s, w, sink);
        break;
      }
    }
    s.events_in.add(batch->size());
    s.count_batch_in(*batch);
    batch->attribute_acks(&s.acks_unresolved);
    InFlight held(w.in_flight, batch->size());
    write_to_sink(s, w, sink, std::move(batch));
  }
  SinkResult r;
  {
    Busy busy(w.busy_since, clock_);
    r = sink.flush(s.context);
  }
  if (r.status != SinkStatus::kOk)
    s.context.log(LogLevel::kError, fmt::format("final flush failed: {}", r.error));
  if (s.spool && s.workers_left.load() == 1) {
    s.spool->sync();
    if (uint64_t left = s.spool->events(); left > 0 && !s.retiring.load())
      s.context.log(LogLevel::kInfo,
                    fmt::format("{} events stay in the spool ({}); they are delivered when this "
                                "sink next runs",
                                left, s.spool->dir().string()));
  }
  worker_done(s);
}

// One call of the sink's write(), timed for stalled() and shielded from exceptions.
SinkResult Runtime::call_sink(Stage& s, Worker& w, Sink& sink, const Batch& batch,
                              uint64_t& set_aside, bool& lost) {
  const uint64_t before = t_set_aside;
  const uint64_t lost_before = t_lost;
  SinkResult r;
  try {
    Busy busy(w.busy_since, clock_, s.latency);
    r = sink.write(s.context, batch);
  } catch (const std::exception& e) {
    r = SinkResult::permanent(e.what());
  }
  set_aside = std::min<uint64_t>(t_set_aside - before, batch.size());
  lost = t_lost != lost_before;
  return r;
}

// The sink's retry policy and breaker decide when to write. With a spool, a batch the breaker
// does not let through goes to the spool (and is acknowledged there); so does every batch while
// the spool holds data and replay is `ordered`. Without one, the batch waits here, holding its
// worker, so that the sink's queue fills and pushes back on the sources.
void Runtime::write_to_sink(Stage& s, Worker& w, Sink& sink, BatchPtr batch) {
  if (s.spool && s.config.spool.replay == config::SpoolConfig::Replay::kOrdered &&
      s.spool->records() > 0)
    return spool_batch(s, w, sink, std::move(batch));
  reliability::RetryPolicy retry(s.config.retry, w.random);
  retry.start(clock_.monotonic_ns());
  for (;;) {
    int64_t now = clock_.monotonic_ns();
    if (!s.breaker.allow(now)) {
      if (s.spool) return spool_batch(s, w, sink, std::move(batch));
      if (wait_abandon_for(s.breaker.wait_ns(now))) return drop_batch(s, *batch);
      continue;
    }
    uint64_t set_aside = 0;
    bool lost = false;
    SinkResult r = call_sink(s, w, sink, *batch, set_aside, lost);
    // A permanent error is the data's fault, not the peer's: the peer answered.
    s.breaker.record(r.status != SinkStatus::kRetryable, clock_.monotonic_ns());
    if (r.status == SinkStatus::kOk) {
      s.events_out.add(batch->size() - set_aside);  // what it dead-lettered is counted there
      s.batches_out.add();
      s.bytes_out.add(batch->bytes());
      // Written, or set aside in the dead-letter file; a record that could not be stored there
      // is lost, and so the batch's acks fail.
      batch->resolve_acks(!lost);
      return;
    }
    if (r.status == SinkStatus::kPermanent) return fail_batch(s, *batch, r.error);
    int64_t wait = 0;
    if (!retry.next(clock_.monotonic_ns(), wait)) {
      std::string why = retry.limit() == reliability::RetryPolicy::Limit::kAttempts
                            ? fmt::format("gave up after {} attempts (retry.max_attempts): {}",
                                          retry.attempts(), r.error)
                            : fmt::format("gave up after {} attempts within retry.max_elapsed: {}",
                                          retry.attempts(), r.error);
      return fail_batch(s, *batch, why);
    }
    wait = std::max(wait, r.retry_after_ns);  // the peer asked for quiet
    s.retries.add();
    s.context.log_limited(LogLevel::kWarn, "write.retry",
                          fmt::format("write failed, retrying: {}", r.error));
    if (wait_abandon_for(wait)) return drop_batch(s, *batch);
  }
}

// Appends the batch to the sink's spool; its acks fire once it is there. While the spool cannot
// take it (full with `when_full: block`, or its disk failing) the batch stays here and the
// worker delivers from the spool to make room: the queue fills and pushes back on the sources.
void Runtime::spool_batch(Stage& s, Worker& w, Sink& sink, BatchPtr batch) {
  using Status = reliability::Spool::AppendStatus;
  for (;;) {
    reliability::Spool::AppendResult r = s.spool->append(*batch);
    if (r.dropped_events > 0) {
      s.spool_dropped.add(r.dropped_events);
      s.context.log_limited(LogLevel::kWarn, "spool.dropped",
                            fmt::format("spool full (max_size): dropped its oldest {} events "
                                        "(when_full: drop_oldest)",
                                        r.dropped_events));
    }
    if (r.status == Status::kOk) {
      s.spooled.add(batch->size());
      batch->resolve_acks(true);  // durable once appended; a replay does not acknowledge again
      if (s.spool_blocked.exchange(false))
        s.context.log(LogLevel::kInfo, "the spool takes batches again");
      return;
    }
    if (!s.spool_blocked.exchange(true))
      s.context.log(LogLevel::kWarn,
                    r.status == Status::kFull
                        ? fmt::format("spool full (max_size {} bytes): holding batches, which "
                                      "pushes back on the sources",
                                      s.config.spool.max_size)
                        : fmt::format("cannot write to the spool: {}; holding batches, which "
                                      "pushes back on the sources",
                                      r.error));
    int64_t wait = replay(s, w, sink);
    if (wait > 0 && wait_abandon_for(std::min(wait, kTickNs))) return drop_batch(s, *batch);
    if (abandoned()) return drop_batch(s, *batch);
  }
}

// One turn of replay: delivers the oldest spooled batches, joined up to the pipeline's
// batch.max_events into one write (batches spooled while a source trickled can be tiny), when the
// breaker and the replay rate allow. Returns 0 when it did something (try again at once), else how
// long nothing will change.
int64_t Runtime::replay(Stage& s, Worker& w, Sink& sink) {
  if (s.spool->records() == 0) return kTickNs;
  std::unique_lock lock(s.replay_mu, std::try_to_lock);
  if (!lock.owns_lock()) return kTickNs;  // another worker replays
  int64_t now = clock_.monotonic_ns();
  check_replay_rate(s, now);
  if (now < s.replay_not_before) return s.replay_not_before - now;
  std::vector<reliability::Spool::Claim> claims;
  uint64_t events = 0;
  const uint64_t limit = s.generation->pipeline.batch.max_events;
  while (events < limit) {
    std::optional<reliability::Spool::Claim> claim = s.spool->claim();
    if (!claim) break;
    if (!claims.empty() && events + claim->events > limit) {
      s.spool->release(*claim, false);  // first in line again
      break;
    }
    events += claim->events;
    claims.push_back(std::move(*claim));
  }
  count_spool_corrupt(s);
  auto release_all = [&](bool delivered) {
    // Newest first, so that undelivered ones are claimed again in their order.
    for (auto it = claims.rbegin(); it != claims.rend(); ++it) s.spool->release(*it, delivered);
  };
  if (claims.empty()) return kTickNs;
  if (int64_t wait = s.bucket.wait_ns(events, now); wait > 0) {
    release_all(false);
    return wait;
  }
  if (!s.breaker.allow(now)) {
    s.bucket.refund(events);
    release_all(false);
    return std::max<int64_t>(s.breaker.wait_ns(now), 1'000'000);
  }
  BatchPtr joined;
  if (claims.size() > 1) joined = join(claims);
  Batch& batch = joined ? *joined : *claims.front().batch;
  SinkResult r;
  uint64_t set_aside = 0;
  bool lost = false;  // a spooled batch has no acks left to fail: they fired when it was spooled
  {
    InFlight held(w.in_flight, batch.size());
    r = call_sink(s, w, sink, batch, set_aside, lost);
  }
  now = clock_.monotonic_ns();
  s.breaker.record(r.status != SinkStatus::kRetryable, now);
  if (r.status == SinkStatus::kRetryable) {
    release_all(false);
    s.retries.add();
    s.context.log_limited(LogLevel::kWarn, "replay.retry",
                          fmt::format("replay from the spool failed, retrying: {}", r.error));
    if (s.breaker.state() != reliability::BreakerState::kClosed) {
      // The breaker paces the probes now (open_for); a backoff grown during a long outage
      // would only delay the first delivery once the peer is back.
      s.replay_retry.reset();
      return std::max<int64_t>(s.breaker.wait_ns(now), 1'000'000);
    }
    if (!s.replay_retry) {
      s.replay_retry.emplace(s.replay_retry_config, s.replay_random);
      s.replay_retry->start(now);
    }
    int64_t wait = 0;
    s.replay_retry->next(now, wait);  // no limits: the batch stays spooled until it is taken
    wait = std::max(wait, r.retry_after_ns);
    s.replay_not_before = now + wait;
    return std::max<int64_t>(wait, 1);
  }
  s.replay_retry.reset();
  if (r.status == SinkStatus::kOk) {
    s.events_out.add(batch.size() - set_aside);
    s.batches_out.add();
    s.bytes_out.add(batch.bytes());
    s.replayed.add(batch.size());
  } else {
    fail_batch(s, batch, r.error);
  }
  release_all(true);
  return 0;
}

// One batch of the events of several spooled ones, in order. Its events and fields point into
// the decoded batches, which it keeps alive: nothing is copied.
BatchPtr Runtime::join(std::vector<reliability::Spool::Claim>& claims) {
  auto joined = std::make_unique<Batch>(0);
  size_t events = 0;
  size_t fields = 0;
  for (const auto& c : claims)
    for (const Event& e : c.batch->events()) {
      ++events;
      fields += e.field_count;
    }
  joined->reserve(events, fields);
  joined->origin = claims.front().batch->origin;
  joined->ingest_time_ns = claims.front().batch->ingest_time_ns;
  for (auto& c : claims) {
    for (const Event& e : c.batch->events()) {
      Event& out = joined->add(e.raw, e.time_ns);
      for (const Field& f : c.batch->fields(e)) joined->append_field(out, f.key, f.value);
    }
    std::shared_ptr<const Batch> part = std::move(c.batch);
    joined->keep_alive(part, 0);  // its bytes already count in the spool, not in a queue
  }
  return joined;
}

// When the sink's inputs have ended (not by a stop): replays the whole spool, waiting out an open
// breaker while anything else still runs. Once every thread left is a sink waiting like this (a
// batch job whose peers are down), it leaves the rest on disk for the next run.
void Runtime::drain_spool(Stage& s, Worker& w, Sink& sink) {
  while (s.spool->records() > 0 && !abandoned() && !stopping()) {
    int64_t wait = replay(s, w, sink);  // also turns an open breaker half-open in time
    if (wait == 0) continue;
    bool open = s.breaker.state() == reliability::BreakerState::kOpen;
    if (open) {
      std::lock_guard lock(mu_);
      if (running_ <= waiting_drains_ + 1) return;
      ++waiting_drains_;
    }
    wait_abandon_for(std::min(wait, kTickNs));
    if (open) {
      std::lock_guard lock(mu_);
      --waiting_drains_;
    }
  }
}

// `fsync: interval`: data appended since the last sync reaches the disk within fsync_interval
// even when no more appends come to trigger it.
void Runtime::sync_spool(Stage& s) {
  if (s.config.spool.fsync != config::SpoolConfig::Fsync::kInterval) return;
  int64_t now = clock_.monotonic_ns();
  int64_t last = s.last_sync_ns.load(std::memory_order_relaxed);
  if (now - last < s.config.spool.fsync_interval_ns) return;
  if (s.last_sync_ns.compare_exchange_strong(last, now)) s.spool->sync();
}

// Records skipped on read since the last look, counted in <sink>.spool_corrupt.
void Runtime::count_spool_corrupt(Stage& s) {
  uint64_t corrupt = s.spool->totals().corrupt_records;
  if (corrupt > s.corrupt_seen) {
    s.spool_corrupt.add(corrupt - s.corrupt_seen);
    s.context.log_limited(LogLevel::kError, "spool.corrupt",
                          fmt::format("skipped {} damaged spool records (checksum or format)",
                                      corrupt - s.corrupt_seen));
    s.corrupt_seen = corrupt;
  }
}

// Under replay_mu: warns when the spool keeps growing while its sink is up, i.e. when the input
// rate is above replay_rate and the spool would never empty.
void Runtime::check_replay_rate(Stage& s, int64_t now) {
  if (s.breaker.state() != reliability::BreakerState::kClosed) {
    s.rate_check_ns = 0;  // an outage, not the input rate, makes it grow: start afresh after
    return;
  }
  if (s.rate_check_ns != 0 && now - s.rate_check_ns < kRateCheckNs) return;
  uint64_t pending = s.spool->events();
  uint64_t in = s.events_in.value();
  uint64_t replayed = s.replayed.value();
  if (s.rate_check_ns != 0 && pending > s.rate_check_pending) {
    double seconds = static_cast<double>(now - s.rate_check_ns) / 1e9;
    s.context.log(
        LogLevel::kWarn,
        fmt::format("the spool grew to {} events over {:.0f} s while the sink was up: {:.0f} "
                    "events/s came in, {:.0f} events/s were replayed (spool.replay_rate {}); at "
                    "this pace it will not empty",
                    pending, seconds, static_cast<double>(in - s.rate_check_in) / seconds,
                    static_cast<double>(replayed - s.rate_check_replayed) / seconds,
                    s.config.spool.replay_rate));
  }
  s.rate_check_ns = now;
  s.rate_check_pending = pending;
  s.rate_check_in = in;
  s.rate_check_replayed = replayed;
}

// A batch that cannot be written: dead-lettered, counted as failed, its acks failed.
void Runtime::fail_batch(Stage& s, Batch& batch, const std::string& reason) {
  s.failed.add(batch.size());
  std::string line;
  for (const Event& e : batch.events()) {
    line.clear();
    json::append_line(line, batch, e, json::Encoding::kAuto);
    line.pop_back();
    s.context.dead_letter(line, reason);  // a record it cannot store is counted as lost
  }
  batch.resolve_acks(false);
  s.context.log_limited(
      LogLevel::kError, "write.permanent",
      fmt::format("batch of {} events failed permanently: {}", batch.size(), reason));
}

// A batch the shutdown deadline took from a sink that was waiting to write it.
void Runtime::drop_batch(Stage& s, Batch& batch) {
  s.shutdown_dropped.add(batch.size());
  batch.resolve_acks(false);
}

void Runtime::worker_done(Stage& s) {
  if (--s.workers_left == 0) {
    s.close();
    {
      std::lock_guard lock(mu_);
      s.ended = true;
    }
  }
  thread_done();
}

void Runtime::thread_done() {
  bool last;
  {
    std::lock_guard lock(mu_);
    last = --running_ == 0;
  }
  cv_.notify_all();
  if (last && on_finished_) on_finished_();
}

void Runtime::request_stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_.exchange(true)) return;
  }
  cv_.notify_all();
  std::lock_guard lock(mu_);
  for (auto& s : stages_)
    if (s->kind() == Kind::kSource) static_cast<Source&>(*s->built->instances.front()).interrupt();
}

void Runtime::abandon() {
  request_stop();
  std::lock_guard lock(mu_);
  abandoned_ = true;
  cv_.notify_all();
  for (auto* list : {&stages_, &retired_})
    for (auto& s : *list)
      if (s->built->input) s->input().abandon();
}

void Runtime::reopen() {
  std::lock_guard lock(mu_);
  for (auto& s : stages_) {
    s->context.reopen_dead_letters();
    for (auto& instance : s->built->instances) instance->reopen(s->context);
  }
}

bool Runtime::wait_for(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return running_ == 0; });
}

bool Runtime::finished() const {
  std::lock_guard lock(mu_);
  return running_ == 0;
}

std::vector<std::string> Runtime::stalled(int64_t limit_ns) const {
  int64_t now = clock_.monotonic_ns();
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (auto* list : {&stages_, &retired_})
    for (auto& s : *list) {
      if (s->kind() == Kind::kSource) continue;
      for (auto& w : s->workers) {
        int64_t since = w->busy_since.load(std::memory_order_relaxed);
        if (since != 0 && now - since > limit_ns) {
          out.push_back(s->name());
          break;
        }
      }
    }
  return out;
}

std::vector<std::string> Runtime::components() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto& s : stages_) out.push_back(s->name());
  return out;
}

uint64_t Runtime::count_in_flight() {
  uint64_t total = 0;
  std::lock_guard lock(mu_);
  for (auto* list : {&stages_, &retired_})
    for (auto& s : *list)
      for (auto& w : s->workers) {
        uint64_t n = w->in_flight.exchange(0, std::memory_order_relaxed);
        s->shutdown_dropped.add(n);
        total += n;
      }
  return total;
}

std::vector<Runtime::SinkState> Runtime::sinks() const {
  std::vector<SinkState> out;
  std::lock_guard lock(mu_);
  for (auto& s : stages_) {
    if (s->kind() != Kind::kSink) continue;
    SinkState& state = out.emplace_back();
    state.name = s->name();
    state.breaker = reliability::state_name(s->breaker.state());
    state.not_closed_since_ns = s->not_closed_since.load(std::memory_order_relaxed);
    if (s->spool) {
      state.spooling = true;
      state.spool_events = s->spool->events();
      state.spool_bytes = s->spool->bytes();
      state.spool_records = s->spool->records();
      state.spool_oldest_ns = s->spool->oldest_ns();
    }
  }
  return out;
}

std::vector<Runtime::QueueState> Runtime::queues() const {
  std::vector<QueueState> out;
  std::lock_guard lock(mu_);
  for (auto& s : stages_) {
    if (!s->built->input) continue;
    const BatchQueue& q = *s->built->input;
    out.push_back({s->name(), q.size(), q.max_batches(), q.bytes(), q.max_bytes()});
  }
  return out;
}

boost::asio::io_context& Runtime::io() {
  return io_->context;
}

void Runtime::collect(std::vector<Family>& out) const {
  // Built aside and appended at the end: references into `out` would not survive its growth.
  std::deque<Family> mine;
  auto family = [&](const char* name, const char* help) -> Family& {
    Family& f = mine.emplace_back();
    f.name = name;
    f.help = help;
    f.type = MetricType::kGauge;
    return f;
  };
  Family& info = family("ingestd_component_info",
                        "A running component (value 1), with its kind and plugin type.");
  Family& depth = family("ingestd_queue_batches", "Batches waiting in a component's input queue.");
  Family& depth_max =
      family("ingestd_queue_max_batches", "The bound of a component's input queue, in batches.");
  Family& bytes = family("ingestd_queue_bytes", "Bytes waiting in a component's input queue.");
  Family& bytes_max =
      family("ingestd_queue_max_bytes", "The bound of a component's input queue, in bytes.");
  Family& breaker = family("ingestd_sink_breaker_state",
                           "A sink's circuit breaker: 1 for the state it is in, 0 for the others.");
  Family& open_for = family("ingestd_sink_breaker_not_closed_seconds",
                            "How long a sink's breaker has been out of the closed state (0 when "
                            "closed).");
  Family& spool_bytes = family("ingestd_sink_spool_bytes", "Bytes a sink's spool holds on disk.");
  Family& spool_records =
      family("ingestd_sink_spool_records", "Records (spooled batches) waiting in a sink's spool.");
  Family& spool_events = family("ingestd_sink_spool_events", "Events waiting in a sink's spool.");
  Family& spool_age = family("ingestd_sink_spool_oldest_age_seconds",
                             "Age of the oldest spool segment with undelivered records (0 when "
                             "empty).");
  const int64_t now = clock_.now_ns();
  const int64_t mono = clock_.monotonic_ns();
  std::lock_guard lock(mu_);
  for (const auto& s : stages_) {
    Labels component = {{"component", s->name()}};
    info.samples.push_back({{{"component", s->name()},
                             {"kind", std::string(config::kind_name(s->kind()))},
                             {"type", s->config.type}},
                            1,
                            {}});
    if (s->built->input) {
      const BatchQueue& q = *s->built->input;
      depth.samples.push_back({component, static_cast<double>(q.size()), {}});
      depth_max.samples.push_back({component, static_cast<double>(q.max_batches()), {}});
      bytes.samples.push_back({component, static_cast<double>(q.bytes()), {}});
      bytes_max.samples.push_back({component, static_cast<double>(q.max_bytes()), {}});
    }
    if (s->kind() != Kind::kSink) continue;
    Labels sink = {{"sink", s->name()}};
    std::string_view state = reliability::state_name(s->breaker.state());
    for (const char* name : {"closed", "open", "half_open"})
      breaker.samples.push_back(
          {{{"sink", s->name()}, {"state", name}}, state == name ? 1.0 : 0.0, {}});
    int64_t since = s->not_closed_since.load(std::memory_order_relaxed);
    open_for.samples.push_back(
        {sink, since == 0 ? 0.0 : static_cast<double>(mono - since) / 1e9, {}});
    if (s->spool) {
      const auto& spool = *s->spool;
      spool_bytes.samples.push_back({sink, static_cast<double>(spool.bytes()), {}});
      spool_records.samples.push_back({sink, static_cast<double>(spool.records()), {}});
      spool_events.samples.push_back({sink, static_cast<double>(spool.events()), {}});
      int64_t oldest = spool.oldest_ns();
      spool_age.samples.push_back(
          {sink, oldest == 0 ? 0.0 : std::max(0.0, static_cast<double>(now - oldest) / 1e9), {}});
    }
  }
  // What the components report themselves (Context::gauges()), one family per name.
  // A name the core exports itself is not taken (a plugin cannot fake a core series).
  std::map<std::string, Family*, std::less<>> reported;
  Family ignored;
  for (Family& f : mine) reported.emplace(f.name, &ignored);
  for (const Family& f : out) reported.emplace(f.name, &ignored);
  auto reported_family = [&](const std::string& name, const std::string& help) -> Family& {
    auto [it, fresh] = reported.try_emplace(name, nullptr);
    if (fresh) {
      it->second = &mine.emplace_back();
      it->second->name = name;
      it->second->help = help;
      it->second->type = MetricType::kGauge;
    }
    return *it->second;
  };
  for (const auto& s : stages_) s->context.collect_gauges(reported_family);
  for (Family& f : mine) out.push_back(std::move(f));
}

bool Runtime::wait_stop_for(const std::atomic<bool>& stop, int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [&] { return stopping() || stop.load(std::memory_order_acquire); });
}

bool Runtime::abandoned() const {
  std::lock_guard lock(mu_);
  return abandoned_;
}

bool Runtime::wait_abandon_for(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return abandoned_; });
}

}  // namespace ingestd::runtime
