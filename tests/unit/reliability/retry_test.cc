#include "reliability/retry.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace ingestd::reliability {
namespace {

constexpr int64_t kMs = 1'000'000;

config::RetryConfig no_jitter(int64_t initial, int64_t max, double multiplier) {
  return {.initial_ns = initial,
          .max_ns = max,
          .multiplier = multiplier,
          .jitter = config::Jitter::kNone};
}

std::vector<int64_t> waits(RetryPolicy& policy, int n, int64_t now = 0) {
  std::vector<int64_t> out;
  policy.start(now);
  for (int i = 0; i < n; ++i) {
    int64_t wait = -1;
    if (!policy.next(now, wait)) break;
    out.push_back(wait);
  }
  return out;
}

TEST(RetryPolicy, WithoutJitterDoublesUpToTheCap) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(100 * kMs, 1000 * kMs, 2);
  RetryPolicy policy(config, random);
  EXPECT_EQ(waits(policy, 7), (std::vector<int64_t>{100 * kMs, 200 * kMs, 400 * kMs, 800 * kMs,
                                                    1000 * kMs, 1000 * kMs, 1000 * kMs}));
}

TEST(RetryPolicy, MultiplierOtherThanTwo) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(10 * kMs, 500 * kMs, 3);
  RetryPolicy policy(config, random);
  EXPECT_EQ(waits(policy, 5),
            (std::vector<int64_t>{10 * kMs, 30 * kMs, 90 * kMs, 270 * kMs, 500 * kMs}));
}

TEST(RetryPolicy, CapNeverOverflows) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(1'000'000'000, 30'000'000'000, 10);
  RetryPolicy policy(config, random);
  EXPECT_EQ(policy.cap(0), 1'000'000'000);
  EXPECT_EQ(policy.cap(1000), 30'000'000'000);
  EXPECT_EQ(policy.cap(1'000'000'000'000), 30'000'000'000);
}

TEST(RetryPolicy, FullJitterStaysWithinZeroAndTheCap) {
  std::mt19937_64 random(42);
  config::RetryConfig config{.initial_ns = 100 * kMs, .max_ns = 2000 * kMs, .multiplier = 2};
  RetryPolicy policy(config, random);
  for (int round = 0; round < 100; ++round) {
    policy.start(0);
    for (uint64_t n = 0; n < 20; ++n) {
      int64_t wait = -1;
      ASSERT_TRUE(policy.next(0, wait));
      EXPECT_GE(wait, 0);
      EXPECT_LE(wait, policy.cap(n)) << "wait " << n;
    }
  }
}

TEST(RetryPolicy, FullJitterWithASeededEngineIsExact) {
  config::RetryConfig config{.initial_ns = 100 * kMs, .max_ns = 1000 * kMs, .multiplier = 2};
  std::mt19937_64 random(7);
  RetryPolicy policy(config, random);
  std::vector<int64_t> got = waits(policy, 6);

  // The same draws, made by hand: uniform in [0, cap] for caps 100, 200, 400, 800, 1000, 1000 ms.
  std::mt19937_64 expected_random(7);
  std::vector<int64_t> expected;
  for (int64_t cap : {100, 200, 400, 800, 1000, 1000})
    expected.push_back(std::uniform_int_distribution<int64_t>(0, cap * kMs)(expected_random));
  EXPECT_EQ(got, expected);

  std::mt19937_64 again(7);
  RetryPolicy replay(config, again);
  EXPECT_EQ(waits(replay, 6), got);
}

TEST(RetryPolicy, MaxAttemptsCountsEveryWrite) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(10 * kMs, 1000 * kMs, 2);
  config.max_attempts = 3;
  RetryPolicy policy(config, random);
  // Three attempts: the first and second fail with a wait after each, the third gives up.
  EXPECT_EQ(waits(policy, 10), (std::vector<int64_t>{10 * kMs, 20 * kMs}));
  EXPECT_EQ(policy.attempts(), 3u);
  EXPECT_EQ(policy.limit(), RetryPolicy::Limit::kAttempts);
}

TEST(RetryPolicy, MaxAttemptsOfOneNeverRetries) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(10 * kMs, 1000 * kMs, 2);
  config.max_attempts = 1;
  RetryPolicy policy(config, random);
  EXPECT_TRUE(waits(policy, 10).empty());
  EXPECT_EQ(policy.limit(), RetryPolicy::Limit::kAttempts);
}

TEST(RetryPolicy, UnlimitedByDefault) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(10 * kMs, 1000 * kMs, 2);
  RetryPolicy policy(config, random);
  EXPECT_EQ(waits(policy, 10000).size(), 10000u);
  EXPECT_EQ(policy.limit(), RetryPolicy::Limit::kNone);
}

TEST(RetryPolicy, MaxElapsedStopsBeforeAWaitThatWouldPassIt) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(100 * kMs, 10'000 * kMs, 2);
  config.max_elapsed_ns = 1000 * kMs;
  RetryPolicy policy(config, random);
  int64_t now = 5'000 * kMs;
  policy.start(now);
  int64_t wait = 0;
  // Waits of 100, 200, 400 ms end at 100, 300, 700 ms after the start: within the limit.
  for (int64_t expected : {100 * kMs, 200 * kMs, 400 * kMs}) {
    ASSERT_TRUE(policy.next(now, wait));
    EXPECT_EQ(wait, expected);
    now += wait;
  }
  // The next, 800 ms, would end 1500 ms after the start.
  EXPECT_FALSE(policy.next(now, wait));
  EXPECT_EQ(policy.limit(), RetryPolicy::Limit::kElapsed);
  EXPECT_EQ(policy.attempts(), 4u);
}

TEST(RetryPolicy, StartBeginsAFreshSchedule) {
  std::mt19937_64 random(1);
  config::RetryConfig config = no_jitter(10 * kMs, 1000 * kMs, 2);
  config.max_attempts = 2;
  RetryPolicy policy(config, random);
  EXPECT_EQ(waits(policy, 10), (std::vector<int64_t>{10 * kMs}));
  EXPECT_EQ(waits(policy, 10), (std::vector<int64_t>{10 * kMs}));
  EXPECT_EQ(policy.attempts(), 2u);
}

}  // namespace
}  // namespace ingestd::reliability
