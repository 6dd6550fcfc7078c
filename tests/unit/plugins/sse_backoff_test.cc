#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "source/sse/backoff.h"

namespace ingestd::plugins::sse {
namespace {

constexpr int64_t kMs = 1'000'000;

// Hands out `values` in turn, then repeats the last.
std::function<double()> sequence(std::vector<double> values) {
  auto next = std::make_shared<size_t>(0);
  return [values, next] {
    const double v = values[std::min(*next, values.size() - 1)];
    ++*next;
    return v;
  };
}

TEST(SseBackoffTest, DoublesFromInitialUpToMaxWithoutJitter) {
  Backoff b({.initial_ns = 100 * kMs, .max_ns = 1000 * kMs, .jitter = 0}, sequence({0.5}));
  std::vector<int64_t> waits;
  for (int i = 0; i < 7; ++i) {
    waits.push_back(b.next_ns() / kMs);
    b.failed();
  }
  EXPECT_EQ(waits, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000, 1000}));
  b.succeeded();
  EXPECT_EQ(b.next_ns(), 100 * kMs);
  EXPECT_EQ(b.failures(), 0u);
}

TEST(SseBackoffTest, JitterShortensTheWaitByUpToItsFraction) {
  Backoff b({.initial_ns = 1000 * kMs, .max_ns = 8000 * kMs, .jitter = 0.5},
            sequence({0.0, 0.5, 0.999999, 0.25}));
  EXPECT_EQ(b.next_ns(), 1000 * kMs);        // u = 0: the whole wait
  EXPECT_EQ(b.next_ns(), 750 * kMs);         // u = 0.5: a quarter less
  EXPECT_GT(b.next_ns(), 500 * kMs - 1000);  // u -> 1: half of it, never less
  b.failed();
  b.failed();
  EXPECT_EQ(b.next_ns(), 3500 * kMs);  // cap 4000, u = 0.25
}

TEST(SseBackoffTest, RetryFromTheServerReplacesTheBase) {
  Backoff b({.initial_ns = 100 * kMs, .max_ns = 1000 * kMs, .jitter = 0}, sequence({0}));
  b.set_base_ns(300 * kMs);
  EXPECT_EQ(b.next_ns(), 300 * kMs);
  b.failed();
  EXPECT_EQ(b.next_ns(), 600 * kMs);
  b.failed();
  EXPECT_EQ(b.next_ns(), 1000 * kMs);
  // A server asking for more than max gets it, and no more.
  b.set_base_ns(5000 * kMs);
  EXPECT_EQ(b.next_ns(), 5000 * kMs);
  b.failed();
  EXPECT_EQ(b.cap_ns(b.failures()), 5000 * kMs);
  // retry: 0 means reconnect at once.
  b.set_base_ns(0);
  EXPECT_EQ(b.next_ns(), 0);
}

TEST(SseBackoffTest, CapsNeverOverflow) {
  Backoff b({.initial_ns = INT64_MAX / 3, .max_ns = INT64_MAX, .jitter = 1}, sequence({0.0}));
  for (uint64_t n : {0u, 1u, 2u, 3u, 62u, 63u, 64u, 1000u}) {
    EXPECT_GT(b.cap_ns(n), 0) << n;
    EXPECT_LE(b.cap_ns(n), INT64_MAX) << n;
  }
  EXPECT_EQ(b.cap_ns(1000), INT64_MAX);
  Backoff c({.initial_ns = 1, .max_ns = 1000, .jitter = 0}, sequence({0.0}));
  EXPECT_EQ(c.cap_ns(100000), 1000);
}

}  // namespace
}  // namespace ingestd::plugins::sse
