// Starting a plugin's loop coroutine on the shared io_context, stopping it, and waiting, from the
// component's own thread, for it to end. For the .cc files that hold a plugin's Asio code.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

namespace ingestd::net {

// The end of one coroutine, for the thread that must outlive it (a source's run() owns the
// objects the coroutine uses and may destroy them only once it has ended).
//
// Contract:
// - started() before co_spawn(); finished(e) from co_spawn()'s completion handler with its
//   exception_ptr (null for a normal end): it keeps the exception's text and wakes the waiters.
// - wait_for() returns true once finished() has run, and at once when started() never did.
// - error() is the text of the exception the coroutine ended with, empty otherwise.
// Thread-safe: every function may be called from any thread.
class CoroutineEnd {
 public:
  void started() {
    std::lock_guard lock(mu_);
    started_ = true;
  }

  void finished(std::exception_ptr e) {
    std::lock_guard lock(mu_);
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        error_ = x.what();
      } catch (...) {
        error_ = "unknown exception";
      }
    }
    done_ = true;
    cv_.notify_all();
  }

  bool wait_for(int64_t timeout_ns) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                        [&] { return done_ || !started_; });
  }

  std::string error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool done_ = false;
  std::string error_;
};

// For a loop whose state is a shared `Impl` with members `strand` (where it runs), `end` (a
// CoroutineEnd), `static awaitable<void> loop(std::shared_ptr<Impl>)` and `void cancel()` (on the
// strand: end the loop at its next step and cancel the operation in progress).
// spawn_loop() starts the coroutine; the state lives until it has ended.
template <class Impl>
void spawn_loop(const std::shared_ptr<Impl>& impl) {
  impl->end.started();
  boost::asio::co_spawn(impl->strand, Impl::loop(impl),
                        [impl](std::exception_ptr e) { impl->end.finished(e); });
}

// Asks the loop to end (any thread, more than once): cancel() runs on its strand.
template <class Impl>
void cancel_loop(const std::shared_ptr<Impl>& impl) {
  boost::asio::post(impl->strand, [impl] { impl->cancel(); });
}

}  // namespace ingestd::net
