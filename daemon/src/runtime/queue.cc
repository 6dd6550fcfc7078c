#include "runtime/queue.h"

#include <algorithm>
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
  const size_t taken = items_.size() + reserved_batches_;
  if (taken == 0) return true;
  return taken < max_batches_ && bytes_ + reserved_bytes_ + batch_bytes <= max_bytes_;
}

void BatchQueue::room_freed() {
  not_full_.notify_one();
  if (writable_waiters_ > 0) writable_.notify_all();
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

BatchQueue::PushResult BatchQueue::try_reserve(size_t bytes, Reservation& r) {
  std::lock_guard lock(mu_);
  if (abandoned_flag_) return PushResult::kAbandoned;
  if (!has_room(bytes))
    return when_full_ == WhenFull::kBlock ? PushResult::kTimedOut : PushResult::kOk;
  ++reserved_batches_;
  reserved_bytes_ += bytes;
  r.bytes = bytes;
  r.held = true;
  return PushResult::kOk;
}

BatchQueue::PushResult BatchQueue::push_reserved(BatchPtr batch, Reservation& r) {
  if (!r.held) return push(std::move(batch));
  std::unique_lock lock(mu_);
  --reserved_batches_;
  reserved_bytes_ -= r.bytes;
  r.held = false;
  if (abandoned_flag_) {
    room_freed();
    lock.unlock();
    discard(std::move(batch), abandoned_);
    return PushResult::kAbandoned;
  }
  bytes_ += batch->bytes();
  items_.push_back(std::move(batch));
  lock.unlock();
  not_empty_.notify_one();
  return PushResult::kOk;
}

void BatchQueue::cancel(Reservation& r) {
  if (!r.held) return;
  std::lock_guard lock(mu_);
  --reserved_batches_;
  reserved_bytes_ -= r.bytes;
  r.held = false;
  room_freed();
}

bool BatchQueue::wait_writable(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  auto ready = [&] {
    return abandoned_flag_ || when_full_ == WhenFull::kDropNewest || has_room(0);
  };
  ++writable_waiters_;
  bool r =
      writable_.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(timeout_ns, 0)), ready);
  --writable_waiters_;
  return r;
}

BatchPtr BatchQueue::take_locked() {
  BatchPtr batch = std::move(items_.front());
  items_.pop_front();
  bytes_ -= batch->bytes();
  room_freed();
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
  writable_.notify_all();
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
