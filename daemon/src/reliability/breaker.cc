#include "reliability/breaker.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace ingestd::reliability {

const char* state_name(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(const config::BreakerConfig& config, OnChange on_change,
                               uint64_t min_calls)
    : config_(config), min_calls_(min_calls), on_change_(std::move(on_change)) {}

bool CircuitBreaker::allow(int64_t now_ns) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      if (now_ns - opened_ns_ < config_.open_for_ns) return false;
      change(BreakerState::kHalfOpen, now_ns,
             fmt::format("open for {}ms, probing", config_.open_for_ns / 1'000'000));
      break;
    case BreakerState::kHalfOpen:
      break;
  }
  if (probes_out_ >= std::max<uint64_t>(config_.half_open_probes, 1)) return false;
  ++probes_out_;
  return true;
}

void CircuitBreaker::record(bool success, int64_t now_ns) {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::kOpen:
      return;
    case BreakerState::kHalfOpen:
      if (probes_out_ > 0) --probes_out_;
      if (success) {
        change(BreakerState::kClosed, now_ns, "probe succeeded");
      } else {
        change(BreakerState::kOpen, now_ns, "probe failed");
      }
      return;
    case BreakerState::kClosed:
      break;
  }
  consecutive_ = success ? 0 : consecutive_ + 1;
  if (config_.failure_ratio > 0) {
    window_.push_back({now_ns, !success});
    if (!success) ++window_failed_;
    prune(now_ns);
  }
  if (success) return;
  if (config_.failures != 0 && consecutive_ >= config_.failures) {
    change(BreakerState::kOpen, now_ns, fmt::format("{} consecutive failures", consecutive_));
    return;
  }
  uint64_t calls = window_.size();
  if (config_.failure_ratio > 0 && calls >= min_calls_ &&
      static_cast<double>(window_failed_) >= config_.failure_ratio * static_cast<double>(calls)) {
    change(BreakerState::kOpen, now_ns,
           fmt::format("{} of {} calls failed within {}ms (failure_ratio {})", window_failed_,
                       calls, config_.window_ns / 1'000'000, config_.failure_ratio));
  }
}

int64_t CircuitBreaker::wait_ns(int64_t now_ns) const {
  std::lock_guard lock(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return 0;
    case BreakerState::kOpen:
      return std::max<int64_t>(0, opened_ns_ + config_.open_for_ns - now_ns);
    case BreakerState::kHalfOpen:
      break;
  }
  return std::min(kProbePollNs, config_.open_for_ns);
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void CircuitBreaker::change(BreakerState to, int64_t now_ns, const std::string& why) {
  BreakerState from = std::exchange(state_, to);
  if (to == BreakerState::kOpen) {
    opened_ns_ = now_ns;
    probes_out_ = 0;
  }
  if (to == BreakerState::kClosed) {
    consecutive_ = 0;
    window_.clear();
    window_failed_ = 0;
    probes_out_ = 0;
  }
  if (on_change_) on_change_(from, to, why);
}

void CircuitBreaker::prune(int64_t now_ns) {
  while (!window_.empty() && now_ns - window_.front().end_ns >= config_.window_ns) {
    if (window_.front().failed) --window_failed_;
    window_.pop_front();
  }
}

}  // namespace ingestd::reliability
