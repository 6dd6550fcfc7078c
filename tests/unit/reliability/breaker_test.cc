#include "reliability/breaker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_context.h"

namespace ingestd::reliability {
namespace {

constexpr int64_t kSec = 1'000'000'000;

// A breaker on a fake clock that records every transition as "from->to: reason".
struct Fixture {
  explicit Fixture(config::BreakerConfig c, uint64_t min_calls = CircuitBreaker::kMinCalls)
      : config(c),
        breaker(
            config,
            [this](BreakerState from, BreakerState to, const std::string& why) {
              changes.push_back(std::string(state_name(from)) + "->" + state_name(to) + ": " + why);
            },
            min_calls) {}

  bool call(bool success) {
    if (!breaker.allow(clock.monotonic_ns())) return false;
    breaker.record(success, clock.monotonic_ns());
    return true;
  }

  config::BreakerConfig config;
  testing::FakeClock clock{1000 * kSec};
  std::vector<std::string> changes;
  CircuitBreaker breaker;
};

TEST(CircuitBreaker, OpensAfterConsecutiveFailures) {
  Fixture f({.failures = 3});
  EXPECT_TRUE(f.call(false));
  EXPECT_TRUE(f.call(false));
  EXPECT_TRUE(f.call(true));  // a success resets the count
  EXPECT_TRUE(f.call(false));
  EXPECT_TRUE(f.call(false));
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(f.call(false));
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.changes, (std::vector<std::string>{"closed->open: 3 consecutive failures"}));
  EXPECT_FALSE(f.breaker.allow(f.clock.monotonic_ns()));
}

TEST(CircuitBreaker, OpensOnTheFailureRatioOverTheWindow) {
  Fixture f({.failures = 0, .failure_ratio = 0.5, .window_ns = 10 * kSec});
  // Alternating results: half fail, but fewer than min_calls calls do not count.
  for (int i = 0; i < 9; ++i) {
    EXPECT_TRUE(f.call(i % 2 == 0));
    f.clock.advance(kSec / 2);
  }
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);  // 4 of 9 failed
  EXPECT_TRUE(f.call(false));                           // 5 of 10
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.changes,
            (std::vector<std::string>{
                "closed->open: 5 of 10 calls failed within 10000ms (failure_ratio 0.5)"}));
}

TEST(CircuitBreaker, CallsOutsideTheWindowNoLongerCount) {
  Fixture f({.failures = 0, .failure_ratio = 0.5, .window_ns = 10 * kSec}, 4);
  EXPECT_TRUE(f.call(false));
  EXPECT_TRUE(f.call(false));
  EXPECT_TRUE(f.call(false));
  f.clock.advance(10 * kSec);  // those three leave the window
  EXPECT_TRUE(f.call(true));
  EXPECT_TRUE(f.call(true));
  EXPECT_TRUE(f.call(true));
  EXPECT_TRUE(f.call(false));  // 1 of 4
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(f.changes.empty());
}

TEST(CircuitBreaker, StaysOpenForOpenForThenLetsOneProbeThrough) {
  Fixture f({.failures = 1, .open_for_ns = 10 * kSec});
  EXPECT_TRUE(f.call(false));
  EXPECT_EQ(f.breaker.wait_ns(f.clock.monotonic_ns()), 10 * kSec);
  f.clock.advance(10 * kSec - 1);
  EXPECT_FALSE(f.breaker.allow(f.clock.monotonic_ns()));
  EXPECT_EQ(f.breaker.wait_ns(f.clock.monotonic_ns()), 1);
  f.clock.advance(1);
  EXPECT_TRUE(f.breaker.allow(f.clock.monotonic_ns()));  // the probe
  EXPECT_EQ(f.breaker.state(), BreakerState::kHalfOpen);
  EXPECT_FALSE(f.breaker.allow(f.clock.monotonic_ns()));  // one probe at a time
  EXPECT_EQ(f.breaker.wait_ns(f.clock.monotonic_ns()), CircuitBreaker::kProbePollNs);
  EXPECT_EQ(f.changes, (std::vector<std::string>{"closed->open: 1 consecutive failures",
                                                 "open->half_open: open for 10000ms, probing"}));
}

TEST(CircuitBreaker, ASuccessfulProbeCloses) {
  Fixture f({.failures = 2, .open_for_ns = kSec});
  f.call(false);
  f.call(false);
  f.clock.advance(kSec);
  EXPECT_TRUE(f.breaker.allow(f.clock.monotonic_ns()));
  f.breaker.record(true, f.clock.monotonic_ns());
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(f.changes.back(), "half_open->closed: probe succeeded");
  // The failure count started afresh: one failure does not reopen it.
  EXPECT_TRUE(f.call(false));
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
}

TEST(CircuitBreaker, AFailedProbeReopensForAnotherOpenFor) {
  Fixture f({.failures = 1, .open_for_ns = kSec});
  f.call(false);
  f.clock.advance(kSec);
  EXPECT_TRUE(f.breaker.allow(f.clock.monotonic_ns()));
  f.clock.advance(kSec / 4);
  f.breaker.record(false, f.clock.monotonic_ns());
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.changes.back(), "half_open->open: probe failed");
  EXPECT_EQ(f.breaker.wait_ns(f.clock.monotonic_ns()), kSec);
  f.clock.advance(kSec - 1);
  EXPECT_FALSE(f.breaker.allow(f.clock.monotonic_ns()));
  f.clock.advance(1);
  EXPECT_TRUE(f.breaker.allow(f.clock.monotonic_ns()));
  EXPECT_EQ(f.changes.size(), 4u);
}

TEST(CircuitBreaker, HalfOpenProbesBoundsTheCallsAtOnce) {
  Fixture f({.failures = 1, .open_for_ns = kSec, .half_open_probes = 2});
  f.call(false);
  f.clock.advance(kSec);
  int64_t now = f.clock.monotonic_ns();
  EXPECT_TRUE(f.breaker.allow(now));
  EXPECT_TRUE(f.breaker.allow(now));
  EXPECT_FALSE(f.breaker.allow(now));
  f.breaker.record(true, now);
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  f.breaker.record(false, now);  // the other probe ends after the close: an ordinary call
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
}

TEST(CircuitBreaker, ResultsThatArriveWhileOpenAreIgnored) {
  Fixture f({.failures = 1, .open_for_ns = kSec});
  EXPECT_TRUE(f.breaker.allow(f.clock.monotonic_ns()));  // a second worker's call, started
  f.call(false);                                         // opens
  f.breaker.record(true, f.clock.monotonic_ns());        // the second call ends: no effect
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
  EXPECT_EQ(f.changes.size(), 1u);
}

TEST(CircuitBreaker, ClosedNeverWaits) {
  Fixture f({});
  EXPECT_EQ(f.breaker.wait_ns(f.clock.monotonic_ns()), 0);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(f.call(false));  // default: 5 consecutive
  EXPECT_EQ(f.breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(f.call(false));
  EXPECT_EQ(f.breaker.state(), BreakerState::kOpen);
}

}  // namespace
}  // namespace ingestd::reliability
