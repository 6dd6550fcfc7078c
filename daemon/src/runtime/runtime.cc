#include "runtime/runtime.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "ingestd/json.h"

namespace ingestd::runtime {

namespace {

constexpr int64_t kTickNs = 100'000'000;          // aggregators advance at least this often
constexpr int64_t kRetryInitialNs = 100'000'000;  // sink retry backoff, until the reliability
constexpr int64_t kRetryMaxNs = 5'000'000'000;    // layer takes this over
constexpr int64_t kRateLimitNs = 10'000'000'000;  // repeated warnings at most this often

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

void append_rfc3339(std::string& out, int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  tm t{};
  gmtime_r(&secs, &t);
  out += fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, (ns / 1'000'000) % 1000);
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
  ComponentContext(Runtime& rt, const config::ComponentConfig& c)
      : rt_(rt),
        config_(c),
        label_(fmt::format("{}.{}", config::section_name(c.kind), c.name)),
        dead_letters_(rt.metrics_.counter(c.name + ".dead_letters")) {}
  ~ComponentContext() override {
    if (dead_letter_fd_ >= 0) close(dead_letter_fd_);
  }

  std::string_view name() const override { return config_.name; }
  void log(LogLevel level, std::string_view message) override {
    spdlog::log(to_spdlog(level), "[{}] {}", label_, message);
  }
  Counter& counter(std::string_view name) override {
    return rt_.metrics_.counter(fmt::format("{}.{}", config_.name, name));
  }
  const Clock& clock() const override { return rt_.clock_; }
  boost::asio::io_context& io() override { return rt_.io_->context; }
  BatchLimits batch_limits() const override { return rt_.pipeline_.batch; }
  bool stopping() const override { return rt_.stopping(); }
  bool wait_for_stop(int64_t timeout_ns) override { return rt_.wait_stop_for(timeout_ns); }

  void dead_letter(std::string_view raw, std::string_view reason) override {
    std::string line = "{\"time\":\"";
    append_rfc3339(line, rt_.clock_.now_ns());
    line += "\",\"component\":";
    json::append_string(line, config_.name);
    line += ",\"reason\":";
    json::append_string(line, reason);
    line += ",\"raw\":";
    json::append_string(line, raw);
    line += "}\n";
    std::lock_guard lock(dead_letter_mu_);
    dead_letters_.add();
    if (dead_letter_fd_ < 0 && !open_dead_letter_file()) return;
    if (::write(dead_letter_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      warn_limited(fmt::format("cannot write dead letter: {}", std::strerror(errno)));
  }

  // A warning logged at most once per kRateLimitNs, with the number suppressed since.
  void warn_limited(const std::string& message) {
    int64_t now = rt_.clock_.monotonic_ns();
    std::lock_guard lock(warn_mu_);
    if (now - last_warn_ns_ < kRateLimitNs && last_warn_ns_ != 0) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0)
      log(LogLevel::kWarn,
          fmt::format("{} ({} similar messages suppressed)", message, suppressed_));
    else
      log(LogLevel::kWarn, message);
    last_warn_ns_ = now;
    suppressed_ = 0;
  }

 private:
  bool open_dead_letter_file() {
    std::error_code ec;
    auto dir = std::filesystem::path(rt_.pipeline_.data_dir) / "dead_letter";
    std::filesystem::create_directories(dir, ec);
    auto path = dir / (config_.name + ".jsonl");
    dead_letter_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (dead_letter_fd_ < 0)
      warn_limited(
          fmt::format("cannot open dead-letter file {}: {}", path.string(), std::strerror(errno)));
    return dead_letter_fd_ >= 0;
  }

  Runtime& rt_;
  const config::ComponentConfig& config_;
  std::string label_;
  Counter& dead_letters_;
  std::mutex dead_letter_mu_;
  int dead_letter_fd_ = -1;
  std::mutex warn_mu_;
  int64_t last_warn_ns_ = 0;
  uint64_t suppressed_ = 0;
};

// A component at run time: its node, context, counters and how it hands batches on.
struct Runtime::Stage final : public Output {
  Stage(Runtime& rt, Node& n)
      : node(n),
        context(rt, *n.config),
        events_in(counter_if(rt, n.config->kind != Kind::kSource, "events_in")),
        events_out(counter_if(rt, true, "events_out")),
        unconsumed(counter_if(rt, n.config->kind != Kind::kSink, "unconsumed")),
        failed(counter_if(rt, n.config->kind == Kind::kParser || n.config->kind == Kind::kSink,
                          "failed")),
        retries(counter_if(rt, n.config->kind == Kind::kSink, "retries")),
        shutdown_dropped(counter_if(rt, n.config->kind != Kind::kSource, "shutdown_dropped")) {}

  // A registered counter where it means something for this kind, else a private unused one.
  Counter& counter_if(Runtime& rt, bool wanted, std::string_view name) {
    return wanted ? rt.metrics_.counter(fmt::format("{}.{}", node.config->name, name)) : unused;
  }

  // Fan-out: every consumer but the last gets a clone; the last gets the batch itself.
  bool push(BatchPtr batch) override {
    if (batch->empty()) return true;
    events_out.add(batch->size());
    if (node.outputs.empty()) {
      unconsumed.add(batch->size());
      return true;
    }
    bool accepted = true;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      BatchPtr copy = i + 1 < node.outputs.size() ? batch->clone() : std::move(batch);
      if (node.outputs[i]->input->push(std::move(copy)) == BatchQueue::PushResult::kAbandoned)
        accepted = false;
    }
    return accepted;
  }

  Node& node;
  ComponentContext context;
  Counter unused;
  Counter& events_in;
  Counter& events_out;
  Counter& unconsumed;
  Counter& failed;            // parsers and sinks: events lost to an error the component reported
  Counter& retries;           // sinks
  Counter& shutdown_dropped;  // consumers: what the shutdown deadline discarded
  std::atomic<int> workers_left{0};
};

Runtime::Runtime(const config::Pipeline& pipeline, Graph& graph, Metrics& metrics,
                 const Clock& clock)
    : pipeline_(pipeline), graph_(graph), metrics_(metrics), clock_(clock), io_(new Io) {
  // The logging registry is created on first use; make that happen here, before any of our
  // threads can log at once.
  spdlog::default_logger_raw();
  for (const auto& node : graph_.nodes()) stages_.push_back(std::make_unique<Stage>(*this, *node));
}

Runtime::~Runtime() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  if (io_->guard) io_->guard->reset();
  io_->context.stop();
  for (auto& t : io_->threads) t.join();
}

bool Runtime::start() {
  // Sinks first, sources last: nothing produces into a component that is not ready.
  for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) {
    Stage& s = **it;
    for (auto& instance : s.node.instances) {
      bool ok = false;
      try {
        ok = instance->start(s.context);
      } catch (const std::exception& e) {
        s.context.log(LogLevel::kError, fmt::format("start failed: {}", e.what()));
      }
      if (!ok) {
        s.context.log(LogLevel::kError, "could not start; the pipeline does not run");
        return false;
      }
    }
  }
  for (auto& s : stages_) {
    for (Node* out : s->node.outputs) out->input->add_producer();
    if (s->node.outputs.empty() && s->node.config->kind != Kind::kSink)
      s->context.log(LogLevel::kWarn,
                     "feeds no component: its output is discarded and counted as unconsumed");
  }

  io_->guard.emplace(io_->context.get_executor());
  for (int i = 0; i < pipeline_.io_threads; ++i)
    io_->threads.emplace_back([this] { io_->context.run(); });

  std::lock_guard lock(mu_);
  for (auto it = stages_.rbegin(); it != stages_.rend(); ++it) {
    Stage& s = **it;
    s.workers_left = static_cast<int>(s.node.instances.size());
    for (auto& instance : s.node.instances) {
      Component* c = instance.get();
      ++running_;
      switch (s.node.config->kind) {
        case Kind::kSource:
          threads_.emplace_back([this, &s] { run_source(s); });
          break;
        case Kind::kParser:
          threads_.emplace_back([this, &s, c] { run_parser(s, *c); });
          break;
        case Kind::kAggregator:
          threads_.emplace_back([this, &s] { run_aggregator(s); });
          break;
        case Kind::kSink:
          threads_.emplace_back([this, &s, c] { run_sink(s, *c); });
          break;
      }
    }
  }
  return true;
}

void Runtime::run_source(Stage& s) {
  auto& source = static_cast<Source&>(*s.node.instances.front());
  try {
    source.run(s.context, s);
  } catch (const std::exception& e) {
    s.context.log(LogLevel::kError, fmt::format("stopped by an error: {}", e.what()));
  }
  s.context.log(LogLevel::kDebug, "finished");
  worker_done(s);
}

void Runtime::run_parser(Stage& s, Component& instance) {
  auto& parser = static_cast<Parser&>(instance);
  while (BatchPtr batch = s.node.input->pop()) {
    s.events_in.add(batch->size());
    try {
      parser.parse(s.context, *batch);
    } catch (const std::exception& e) {
      s.failed.add(batch->size());
      for (auto& ack : batch->acks) ack->fail();
      s.context.warn_limited(fmt::format("batch of {} events failed: {}", batch->size(), e.what()));
      continue;
    }
    s.push(std::move(batch));
  }
  worker_done(s);
}

void Runtime::run_aggregator(Stage& s) {
  auto& agg = static_cast<Aggregator&>(*s.node.instances.front());
  try {
    for (;;) {
      BatchPtr batch = s.node.input->pop_for(kTickNs);
      if (batch) {
        s.events_in.add(batch->size());
        agg.consume(s.context, *batch);
      } else if (s.node.input->ended()) {
        break;
      }
      agg.advance(s.context, s, clock_.now_ns());
    }
    agg.flush(s.context, s);
  } catch (const std::exception& e) {
    s.context.log(LogLevel::kError, fmt::format("stopped by an error: {}", e.what()));
  }
  worker_done(s);
}

void Runtime::run_sink(Stage& s, Component& instance) {
  auto& sink = static_cast<Sink&>(instance);
  while (BatchPtr batch = s.node.input->pop()) {
    s.events_in.add(batch->size());
    write_to_sink(s, sink, std::move(batch));
  }
  SinkResult r = sink.flush(s.context);
  if (r.status != SinkStatus::kOk)
    s.context.log(LogLevel::kError, fmt::format("final flush failed: {}", r.error));
  worker_done(s);
}

void Runtime::write_to_sink(Stage& s, Sink& sink, BatchPtr batch) {
  int64_t backoff = kRetryInitialNs;
  for (;;) {
    SinkResult r;
    try {
      r = sink.write(s.context, *batch);
    } catch (const std::exception& e) {
      r = SinkResult::permanent(e.what());
    }
    if (r.status == SinkStatus::kOk) {
      s.events_out.add(batch->size());
      return;
    }
    if (r.status == SinkStatus::kPermanent) {
      s.failed.add(batch->size());
      std::string line;
      for (const Event& e : batch->events()) {
        line.clear();
        json::append_line(line, *batch, e, json::Encoding::kAuto);
        line.pop_back();
        s.context.dead_letter(line, r.error);
      }
      for (auto& ack : batch->acks) ack->fail();
      s.context.warn_limited(
          fmt::format("batch of {} events failed permanently: {}", batch->size(), r.error));
      return;
    }
    s.retries.add();
    s.context.warn_limited(fmt::format("write failed, retrying: {}", r.error));
    if (wait_abandon_for(backoff)) {
      s.shutdown_dropped.add(batch->size());
      for (auto& ack : batch->acks) ack->fail();
      return;
    }
    backoff = std::min(backoff * 2, kRetryMaxNs);
  }
}

void Runtime::worker_done(Stage& s) {
  if (--s.workers_left == 0) {
    for (Node* out : s.node.outputs) out->input->producer_done();
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
  for (auto& s : stages_)
    if (s->node.config->kind == Kind::kSource)
      static_cast<Source&>(*s->node.instances.front()).interrupt();
}

void Runtime::abandon() {
  request_stop();
  {
    std::lock_guard lock(mu_);
    abandoned_ = true;
  }
  cv_.notify_all();
  for (auto& s : stages_)
    if (s->node.input) s->node.input->abandon();
}

void Runtime::reopen() {
  for (auto& s : stages_)
    for (auto& instance : s->node.instances) instance->reopen(s->context);
}

bool Runtime::wait_for(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return running_ == 0; });
}

bool Runtime::finished() const {
  std::lock_guard lock(mu_);
  return running_ == 0;
}

bool Runtime::wait_stop_for(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return stopping(); });
}

bool Runtime::wait_abandon_for(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return abandoned_; });
}

}  // namespace ingestd::runtime
