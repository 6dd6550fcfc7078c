#include "runtime/queue.h"

#include <chrono>

namespace ingestd::runtime {

BatchQueue::BatchQueue(size_t max_batches, size_t max_bytes, WhenFull when_full, Counter& dropped,
                       Counter& abandoned)
    : max_batches_(max_batches < 1 ? 1 : max_batches),
      max_bytes_(max_bytes),
      when_full_(when_full),
      dropped_(dropped),
      abandoned_(abandoned) {}

bool BatchQueue::has_room(size_t batch_bytes) const {
  if (items_.empty()) return true;
  return items_.size() < max_batches_ && bytes_ + batch_bytes <= max_bytes_;
}

void BatchQueue::discard(BatchPtr batch, Counter& counter) {
  counter.add(batch->size());
  batch->resolve_acks(false);
}

BatchQueue::PushResult BatchQueue::push(BatchPtr batch) {
  return push_for(batch, -1);
}

BatchQueue::PushResult BatchQueue::push_for(BatchPtr& batch, int64_t timeout_ns) {
  const size_t b = batch->bytes();
  std::unique_lock lock(mu_);
  auto ready = [&] { return abandoned_flag_ || has_room(b); };
  if (when_full_ == WhenFull::kBlock) {
    if (timeout_ns < 0)
      not_full_.wait(lock, ready);
    else if (!not_full_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), ready))
      return PushResult::kTimedOut;
  }
  if (abandoned_flag_) {
    lock.unlock();
    discard(std::move(batch), abandoned_);
    return PushResult::kAbandoned;
  }
  if (!has_room(b)) {
    lock.unlock();
    discard(std::move(batch), dropped_);
    return PushResult::kDropped;
  }
  bytes_ += b;
  items_.push_back(std::move(batch));
  lock.unlock();
  not_empty_.notify_one();
  return PushResult::kOk;
}

BatchPtr BatchQueue::take_locked() {
  BatchPtr batch = std::move(items_.front());
  items_.pop_front();
  bytes_ -= batch->bytes();
  not_full_.notify_one();
  return batch;
}

BatchPtr BatchQueue::pop() {
  std::unique_lock lock(mu_);
  not_empty_.wait(lock, [&] { return !items_.empty() || producers_ == 0 || abandoned_flag_; });
  if (abandoned_flag_ || items_.empty()) return nullptr;
  return take_locked();
}

BatchPtr BatchQueue::pop_for(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  not_empty_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [&] { return !items_.empty() || producers_ == 0 || abandoned_flag_; });
  if (abandoned_flag_ || items_.empty()) return nullptr;
  return take_locked();
}

bool BatchQueue::ended() const {
  std::lock_guard lock(mu_);
  return abandoned_flag_ || (producers_ == 0 && items_.empty());
}

void BatchQueue::add_producer() {
  std::lock_guard lock(mu_);
  ++producers_;
}

void BatchQueue::producer_done() {
  // Notified under the lock: once the consumer sees the input end, the queue may be destroyed
  // (a component removed by a reload), so nothing may touch it after the lock is released.
  std::lock_guard lock(mu_);
  --producers_;
  not_empty_.notify_all();
}

void BatchQueue::abandon() {
  std::deque<BatchPtr> left;
  {
    std::lock_guard lock(mu_);
    abandoned_flag_ = true;
    left.swap(items_);
    bytes_ = 0;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  for (auto& batch : left) discard(std::move(batch), abandoned_);
}

size_t BatchQueue::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

size_t BatchQueue::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace ingestd::runtime
