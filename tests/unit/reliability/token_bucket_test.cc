#include "reliability/token_bucket.h"

#include <gtest/gtest.h>

namespace ingestd::reliability {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(TokenBucket, StartsFullThenPaces) {
  TokenBucket bucket(100, 10);
  EXPECT_EQ(bucket.wait_ns(10, 0), 0);
  EXPECT_EQ(bucket.wait_ns(1, 0), kSec / 100);
  EXPECT_EQ(bucket.wait_ns(1, kSec / 100), 0);
  EXPECT_EQ(bucket.wait_ns(5, kSec / 100), 5 * kSec / 100);
  // Saved-up tokens stop at the burst.
  EXPECT_EQ(bucket.wait_ns(10, 100 * kSec), 0);
  EXPECT_GT(bucket.wait_ns(1, 100 * kSec), 0);
}

TEST(TokenBucket, ABatchBiggerThanTheBurstPassesAndLeavesDebt) {
  TokenBucket bucket(100, 10);
  EXPECT_EQ(bucket.wait_ns(50, 0), 0);
  // 40 tokens of debt plus the one asked for.
  EXPECT_EQ(bucket.wait_ns(1, 0), 41 * kSec / 100);
  EXPECT_EQ(bucket.wait_ns(1, 41 * kSec / 100), 0);
}

TEST(TokenBucket, ARefundUndoesTheDebtOfABatchNotSent) {
  TokenBucket bucket(100, 10);
  EXPECT_EQ(bucket.wait_ns(50, 0), 0);
  bucket.refund(50);
  EXPECT_EQ(bucket.wait_ns(10, 0), 0);
  EXPECT_EQ(bucket.wait_ns(1, 0), kSec / 100);
  // Never more than the burst.
  bucket.refund(1000);
  EXPECT_EQ(bucket.wait_ns(10, 0), 0);
  EXPECT_EQ(bucket.wait_ns(1, 0), kSec / 100);
}

TEST(TokenBucket, AClockSteppingBackIsNoTimePassing) {
  TokenBucket bucket(1, 1);
  EXPECT_EQ(bucket.wait_ns(1, 10 * kSec), 0);
  EXPECT_EQ(bucket.wait_ns(1, 5 * kSec), kSec);
  EXPECT_EQ(bucket.wait_ns(1, 11 * kSec), 0);
}

// Replay over a simulated minute with batches of several sizes, some above the burst: the
// delivered rate is replay_rate within 1%.
TEST(TokenBucket, DeliversTheRateOverAMinute) {
  for (uint64_t rate : {1000ull, 20'000ull, 1'000'000ull}) {
    TokenBucket bucket(rate, rate / 10 + 1);
    const uint64_t sizes[] = {1, 7, rate / 5 + 3, 64};
    uint64_t delivered = 0;
    int64_t now = 0;
    for (size_t i = 0;; ++i) {
      uint64_t n = sizes[i % 4];
      int64_t wait;
      while ((wait = bucket.wait_ns(n, now)) > 0) now += wait;
      if (now >= 60 * kSec) break;
      delivered += n;
    }
    double expected = 60.0 * static_cast<double>(rate);
    EXPECT_NEAR(static_cast<double>(delivered), expected, expected * 0.01 + 1) << rate;
  }
}

}  // namespace
}  // namespace ingestd::reliability
