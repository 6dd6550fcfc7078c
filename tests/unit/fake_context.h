// Test doubles for the services the core gives components: a settable clock, a context that
// records counters, logs and dead letters, and an output that collects batches.
#pragma once

#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/schema.h"

namespace ingestd::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now_ns = 0) : now_(now_ns) {}
  int64_t now_ns() const override { return now_; }
  int64_t monotonic_ns() const override { return now_; }
  void set(int64_t ns) { now_ = ns; }
  void advance(int64_t ns) { now_ += ns; }

 private:
  int64_t now_;
};

class FakeContext : public Context {
 public:
  explicit FakeContext(std::string name = "test") : name_(std::move(name)) {}
  ~FakeContext() override {
    if (!owned_root_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(owned_root_, ec);
    }
  }
  FakeContext(const FakeContext&) = delete;
  FakeContext& operator=(const FakeContext&) = delete;

  std::string_view name() const override { return name_; }
  void log(LogLevel level, std::string_view message) override {
    std::lock_guard lock(mu_);
    logs.emplace_back(level, std::string(message));
  }
  Counter& counter(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto it = counters_.find(std::string(name));
    if (it == counters_.end())
      it = counters_.emplace(std::string(name), std::make_unique<Counter>()).first;
    return *it->second;
  }
  uint64_t count(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = counters_.find(name);
    return it == counters_.end() ? 0 : it->second->value();
  }
  const Clock& clock() const override { return clock_; }
  boost::asio::io_context& io() override {
    throw std::logic_error("FakeContext has no io_context");
  }
  BatchLimits batch_limits() const override { return limits; }
  bool dead_letter(std::string_view raw, std::string_view reason) override {
    std::lock_guard lock(mu_);
    dead_letters.emplace_back(std::string(raw), std::string(reason));
    return dead_letter_ok;
  }
  // state_root/<name>/; without a state_root, a fresh temporary directory removed with the
  // context. Share a state_root between contexts to see what one run left for the next.
  std::string state_dir() override {
    std::lock_guard lock(mu_);
    if (state_root.empty()) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "ingestd_state_XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) return {};
      state_root = owned_root_ = pattern;
    }
    auto dir = std::filesystem::path(state_root) / name_;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    return ec ? std::string() : dir.string() + "/";
  }
  bool stopping() const override { return stopping_; }
  bool wait_for_stop(int64_t timeout_ns) override {
    if (!stopping_) clock_.advance(timeout_ns);
    return stopping_;
  }

  Output* side_output(std::string_view name) override {
    auto it = side_outputs.find(std::string(name));
    return it == side_outputs.end() ? nullptr : it->second;
  }

  FakeClock& fake_clock() { return clock_; }
  void request_stop() { stopping_ = true; }

  BatchLimits limits;
  std::vector<std::pair<LogLevel, std::string>> logs;
  std::vector<std::pair<std::string, std::string>> dead_letters;
  bool dead_letter_ok = true;                   // what dead_letter() answers
  std::string state_root;                       // where state_dir() makes <name>/ (see there)
  std::map<std::string, Output*> side_outputs;  // what side_output() answers, by name

 private:
  std::string name_;
  std::string owned_root_;  // a temporary state_root made by state_dir(), removed at the end
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>> counters_;
  FakeClock clock_{1'700'000'000'000'000'000};
  bool stopping_ = false;
};

// Never full: try_push() always takes the batch. With acknowledge_on_push, it resolves each
// batch's acks ok as it takes it, as a sink that writes at once would.
class CollectingOutput : public Output {
 public:
  bool push(BatchPtr batch) override {
    if (acknowledge_on_push) batch->resolve_acks(true);
    std::lock_guard lock(mu_);
    batches.push_back(std::move(batch));
    return true;
  }
  PushResult try_push(BatchPtr& batch) override {
    push(std::move(batch));
    return PushResult::kOk;
  }
  bool wait_writable(int64_t) override { return true; }
  size_t event_count() const {
    size_t n = 0;
    for (const auto& b : batches) n += b->size();
    return n;
  }
  std::vector<BatchPtr> batches;
  bool acknowledge_on_push = false;

 private:
  std::mutex mu_;
};

// Records errors reported by a factory.
class CollectingDiagnostics : public Diagnostics {
 public:
  void error(std::string_view option, std::string_view message) override {
    errors.emplace_back(std::string(option), std::string(message));
  }
  std::vector<std::pair<std::string, std::string>> errors;
};

}  // namespace ingestd::testing
