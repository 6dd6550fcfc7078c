// Handing a batch to the graph from a coroutine on the shared io_context, without blocking it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ingestd/component.h"
#include "ingestd/event.h"

namespace ingestd::net {

// How long async_push() waits between offers while downstream is full: `initial` after the first
// kFull, doubling up to `max`. Short, so that a batch goes on soon after room appears.
struct PushBackoff {
  std::chrono::nanoseconds initial = std::chrono::milliseconds(1);
  std::chrono::nanoseconds max = std::chrono::milliseconds(50);
};

// Offers `batch` to `out` with Output::try_push() until it is taken, for a source whose work runs
// as a coroutine on the shared io_context (Context::io()): an io thread must never block, so
// Output::push() and wait_writable() are not for it.
//
// Contract:
// - kFull from try_push() leaves the batch with the caller; async_push() then waits on `timer`
//   (an Asio steady_timer of the caller's, on the coroutine's executor; its expiry is
//   overwritten) for the backoff, doubling from backoff.initial to backoff.max, and offers the
//   batch again. The io thread is free meanwhile.
// - Returns kOk once the batch is taken (`batch` is then empty), kStopped when the pipeline
//   refused it because it is stopping (taken and counted by the core), and kFull when it gave up
//   with the batch still in `batch`: `stopped()` returned true before an offer, or the wait on
//   `timer` was cancelled (timer.cancel() is how a source that stops interrupts the wait; call it
//   on the coroutine's executor or strand).
// - `stopped` is any callable returning bool, checked before every offer, e.g. a flag that the
//   source sets on its strand when asked to stop, or Context::stopping().
// - Never throws for a full queue or a cancelled wait; the timer's exceptions (out of memory) pass
//   through.
// Thread safety: as for the caller's timer: use it from one coroutine (or strand) at a time.
template <class Stopped>
boost::asio::awaitable<PushResult> async_push(Output& out, BatchPtr& batch,
                                              boost::asio::steady_timer& timer, Stopped stopped,
                                              PushBackoff backoff = {}) {
  std::chrono::nanoseconds wait = backoff.initial;
  for (;;) {
    if (stopped()) co_return PushResult::kFull;
    PushResult r = out.try_push(batch);
    if (r != PushResult::kFull) co_return r;
    timer.expires_after(wait);
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return PushResult::kFull;  // cancelled: the caller is stopping
    wait = std::min(wait * 2, backoff.max);
  }
}

}  // namespace ingestd::net
