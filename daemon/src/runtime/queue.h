#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>

#include "ingestd/component.h"
#include "ingestd/event.h"

namespace ingestd::runtime {

// A bounded multi-producer/multi-consumer queue of batches: the edge into a component.
//
// Bounds: at most `max_batches` batches and `max_bytes` bytes (Batch::bytes()). A batch larger
// than max_bytes is still admitted into an empty queue, so that one big batch can never wedge
// the pipeline.
//
// When full, push() follows the queue's policy: kBlock waits for room (backpressure: the
// producer, and so eventually the source, slows down); kDropNewest drops the pushed batch,
// counts its events in `dropped` and fails its acks. A producer that must not wait (a fan-out's
// try_push) reserves room first (try_reserve()), in every queue it feeds, and only then pushes
// into the reservations: reserved room counts as taken.
//
// Lifetime: every upstream component registers as a producer (add_producer()) before data flows
// and calls producer_done() once when it will push no more. When the last producer is done and the
// queue is empty, pop() returns nullptr: consumers take that as end of input. abandon() is the
// shutdown-deadline path: blocked and later pushes fail, the batches still queued are discarded
// and counted in `abandoned`, and pop() returns nullptr at once.
//
// Thread-safe; one mutex and two condition variables. Cost is per batch, never per event.
class BatchQueue {
 public:
  enum class WhenFull { kBlock, kDropNewest };
  enum class PushResult { kOk, kDropped, kAbandoned, kTimedOut };

  BatchQueue(size_t max_batches, size_t max_bytes, WhenFull when_full, Counter& dropped,
             Counter& abandoned);
  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  // Always takes the batch; one that is not queued (kDropped, kAbandoned) is counted and its acks
  // are failed.
  PushResult push(BatchPtr batch);
  // As push(), but a kBlock queue waits for room at most timeout_ns: then kTimedOut, and the
  // batch is still the caller's (untouched, acks intact). Otherwise as push().
  PushResult push_for(BatchPtr& batch, int64_t timeout_ns);
  // Room held for one batch, so that a fan-out can secure room in every consumer's queue before
  // it hands a copy to any. Hand it to push_reserved() or give it back with cancel().
  struct Reservation {
    size_t bytes = 0;
    bool held = false;
  };
  // Never waits. kOk: room is held in `r` (or, for a kDropNewest queue that is full, nothing is
  // held and push_reserved() will drop as push() does); kTimedOut: a kBlock queue has no room
  // (nothing held); kAbandoned: nothing held.
  PushResult try_reserve(size_t bytes, Reservation& r);
  // Pushes into the room `r` holds without waiting; otherwise as push().
  PushResult push_reserved(BatchPtr batch, Reservation& r);
  void cancel(Reservation& r);
  // Waits at most timeout_ns until a push of a batch would not wait (there is room for one, or the
  // queue drops when full, or it was abandoned). Returns whether that is so.
  bool wait_writable(int64_t timeout_ns);
  // Blocks until a batch is available or the input has ended (nullptr).
  BatchPtr pop();
  // As pop(), waiting at most timeout_ns; returns nullptr on timeout too: check ended().
  BatchPtr pop_for(int64_t timeout_ns);
  bool ended() const;

  void add_producer();
  void producer_done();
  void abandon();

  size_t size() const;
  size_t bytes() const;
  size_t max_batches() const { return max_batches_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  bool has_room(size_t batch_bytes) const;
  void room_freed();  // under mu_
  BatchPtr take_locked();
  void discard(BatchPtr batch, Counter& counter);

  const size_t max_batches_;
  const size_t max_bytes_;
  const WhenFull when_full_;
  Counter& dropped_;
  Counter& abandoned_;

  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::condition_variable writable_;  // wait_writable() waiters, notified all at once
  int writable_waiters_ = 0;
  std::deque<BatchPtr> items_;
  size_t bytes_ = 0;
  size_t reserved_batches_ = 0;
  size_t reserved_bytes_ = 0;
  int producers_ = 0;
  bool abandoned_flag_ = false;
};

}  // namespace ingestd::runtime
