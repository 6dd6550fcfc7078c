// source/kafka: which consumed offsets may be committed, from the acknowledgements of the batches
// that carried them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ingestd::plugins {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// Per assigned partition, the offset ranges handed to the pipeline in order, and how far the
// acknowledged prefix reaches.
//
// Contract:
// - track() records a batch's range [first, last] of a partition; ranges of one partition follow
//   each other in offset order (the source hands out one partition's batches in order). Offsets
//   between ranges (gaps left by compaction or transaction markers) belong to the later range.
// - ack() settles a range. The committable offset (the next offset to consume, as Kafka commits
//   it) advances over the acknowledged prefix only: a later range's ack never commits past an
//   earlier unsettled one. A failed range blocks the partition at its first offset for good: no
//   commit reaches past it until the partition is assigned afresh (after a restart or a
//   rebalance its data and everything after it is delivered again: at-least-once).
// - assign() starts a partition afresh; revoke() forgets it. Tickets of a partition's earlier
//   assignment are stale from then on: their acks change nothing (ack() says so).
// - commits() lists the partitions whose committable offset passed the last one sent();
//   commit_failed() makes a sent offset pending again.
// Not thread-safe: the source's poll thread owns it (acks reach it through the source's inbox).
class OffsetTracker {
 public:
  // Identifies one tracked range: its partition's assignment and its place in that partition.
  struct Ticket {
    uint64_t assignment = 0;
    uint64_t seq = 0;
  };
  enum class Outcome {
    kOk,      // settled ok (the committable offset may or may not have advanced)
    kFailed,  // settled as failed: the partition is blocked at or before this range
    kStale,   // unknown: the partition was revoked or reassigned since, or settled twice
  };
  struct Commit {
    TopicPartition tp;
    int64_t offset;  // the next offset to consume
  };

  void assign(const TopicPartition& tp);
  void revoke(const TopicPartition& tp);
  bool assigned(const TopicPartition& tp) const { return ids_.count(tp) != 0; }
  std::vector<TopicPartition> partitions() const;

  // Precondition: assigned(tp), first <= last, first past the previous range's last.
  Ticket track(const TopicPartition& tp, int64_t first, int64_t last);
  Outcome ack(const Ticket& ticket, bool ok);
  // The partition of a ticket that is not stale, else nullptr.
  const TopicPartition* partition_of(const Ticket& ticket) const;

  // Ranges handed out and not settled yet, of one partition (0 when not assigned) or of all.
  size_t in_flight(const TopicPartition& tp) const;
  size_t in_flight() const;
  // The next offset to consume that every earlier offset's range was acknowledged, or -1 when no
  // range of this assignment has been.
  int64_t committable(const TopicPartition& tp) const;
  // True once a failed range reached the front of the partition's ranges: commits stop there.
  bool blocked(const TopicPartition& tp) const;

  std::vector<Commit> commits() const;
  std::vector<Commit> commits(const std::vector<TopicPartition>& only) const;
  void sent(const TopicPartition& tp, int64_t offset);
  void commit_failed(const TopicPartition& tp, int64_t offset);

 private:
  enum class Status : uint8_t { kPending, kOk, kFailed };
  struct Range {
    int64_t next;  // last + 1
    Status status;
  };
  struct State {
    TopicPartition tp;
    std::deque<Range> ranges;  // from the oldest unsettled-or-unpopped one
    uint64_t front_seq = 0;    // seq of ranges.front()
    uint64_t next_seq = 0;
    size_t unsettled = 0;
    int64_t last = -1;         // last offset tracked
    int64_t committable = -1;  // -1: nothing acknowledged yet
    int64_t sent = -1;         // last offset handed to a commit
    bool blocked = false;
  };

  const State* find(const TopicPartition& tp) const;

  uint64_t next_assignment_ = 1;
  std::map<TopicPartition, uint64_t> ids_;
  std::unordered_map<uint64_t, State> states_;
};

}  // namespace ingestd::plugins
