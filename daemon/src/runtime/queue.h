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
// counts its events in `dropped` and fails its acks.
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

 private:
  bool has_room(size_t batch_bytes) const;
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
  std::deque<BatchPtr> items_;
  size_t bytes_ = 0;
  int producers_ = 0;
  bool abandoned_flag_ = false;
};

}  // namespace ingestd::runtime
