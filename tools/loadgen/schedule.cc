#include "schedule.h"

namespace ingestd::loadgen {

Schedule::Schedule(double rate_per_s, uint64_t max_requests, int64_t duration_ns, int64_t start_ns)
    : ns_per_request_(rate_per_s > 0 ? 1e9 / rate_per_s : 0.0),
      max_requests_(max_requests),
      duration_ns_(duration_ns),
      start_ns_(start_ns) {}

int64_t Schedule::due_ns(uint64_t index) const {
  return start_ns_ + static_cast<int64_t>(static_cast<double>(index) * ns_per_request_);
}

Schedule::Claim Schedule::claim(int64_t now_ns) {
  uint64_t index = next_.load(std::memory_order_relaxed);
  while (true) {
    if (stopped_.load(std::memory_order_relaxed)) return {Claim::kDone};
    if (max_requests_ != 0 && index >= max_requests_) return {Claim::kDone};
    const int64_t due = due_ns(index);
    if (duration_ns_ > 0 && due >= start_ns_ + duration_ns_) return {Claim::kDone};
    if (duration_ns_ > 0 && now_ns >= start_ns_ + duration_ns_) return {Claim::kDone};
    if (due > now_ns) return {Claim::kWait, 0, due - now_ns};
    if (next_.compare_exchange_weak(index, index + 1, std::memory_order_relaxed))
      return {Claim::kGo, index};
  }
}

}  // namespace ingestd::loadgen
