#include "offset_tracker.h"

#include <algorithm>
#include <cassert>

namespace ingestd::plugins {

void OffsetTracker::assign(const TopicPartition& tp) {
  revoke(tp);
  const uint64_t id = next_assignment_++;
  ids_.emplace(tp, id);
  states_.emplace(id, State{.tp = tp});
}

void OffsetTracker::revoke(const TopicPartition& tp) {
  auto it = ids_.find(tp);
  if (it == ids_.end()) return;
  states_.erase(it->second);
  ids_.erase(it);
}

std::vector<TopicPartition> OffsetTracker::partitions() const {
  std::vector<TopicPartition> out;
  out.reserve(ids_.size());
  for (const auto& [tp, _] : ids_) out.push_back(tp);
  return out;
}

const OffsetTracker::State* OffsetTracker::find(const TopicPartition& tp) const {
  auto it = ids_.find(tp);
  return it == ids_.end() ? nullptr : &states_.at(it->second);
}

OffsetTracker::Ticket OffsetTracker::track(const TopicPartition& tp, int64_t first, int64_t last) {
  const uint64_t id = ids_.at(tp);
  State& s = states_.at(id);
  assert(first <= last && first > s.last);
  (void)first;
  s.ranges.push_back(Range{last + 1, Status::kPending});
  s.last = last;
  ++s.unsettled;
  return Ticket{id, s.next_seq++};
}

OffsetTracker::Outcome OffsetTracker::ack(const Ticket& ticket, bool ok) {
  auto it = states_.find(ticket.assignment);
  if (it == states_.end()) return Outcome::kStale;
  State& s = it->second;
  if (ticket.seq < s.front_seq || ticket.seq - s.front_seq >= s.ranges.size())
    return Outcome::kStale;
  Range& r = s.ranges[ticket.seq - s.front_seq];
  if (r.status != Status::kPending) return Outcome::kStale;
  r.status = ok ? Status::kOk : Status::kFailed;
  --s.unsettled;
  // Settled ranges leave from the front; the committable offset follows them until a failed one.
  while (!s.ranges.empty() && s.ranges.front().status != Status::kPending) {
    if (s.ranges.front().status == Status::kFailed) s.blocked = true;
    if (!s.blocked) s.committable = s.ranges.front().next;
    s.ranges.pop_front();
    ++s.front_seq;
  }
  return ok ? Outcome::kOk : Outcome::kFailed;
}

const TopicPartition* OffsetTracker::partition_of(const Ticket& ticket) const {
  auto it = states_.find(ticket.assignment);
  return it == states_.end() ? nullptr : &it->second.tp;
}

size_t OffsetTracker::in_flight(const TopicPartition& tp) const {
  const State* s = find(tp);
  return s ? s->unsettled : 0;
}

size_t OffsetTracker::in_flight() const {
  size_t n = 0;
  for (const auto& [_, s] : states_) n += s.unsettled;
  return n;
}

int64_t OffsetTracker::committable(const TopicPartition& tp) const {
  const State* s = find(tp);
  return s ? s->committable : -1;
}

bool OffsetTracker::blocked(const TopicPartition& tp) const {
  const State* s = find(tp);
  return s && s->blocked;
}

std::vector<OffsetTracker::Commit> OffsetTracker::commits() const {
  std::vector<Commit> out;
  for (const auto& [tp, id] : ids_) {
    const State& s = states_.at(id);
    if (s.committable > s.sent) out.push_back(Commit{tp, s.committable});
  }
  return out;
}

std::vector<OffsetTracker::Commit> OffsetTracker::commits(
    const std::vector<TopicPartition>& only) const {
  std::vector<Commit> out;
  for (const TopicPartition& tp : only) {
    const State* s = find(tp);
    if (s && s->committable > s->sent) out.push_back(Commit{tp, s->committable});
  }
  return out;
}

void OffsetTracker::sent(const TopicPartition& tp, int64_t offset) {
  auto it = ids_.find(tp);
  if (it == ids_.end()) return;
  State& s = states_.at(it->second);
  s.sent = std::max(s.sent, offset);
}

void OffsetTracker::commit_failed(const TopicPartition& tp, int64_t offset) {
  auto it = ids_.find(tp);
  if (it == ids_.end()) return;
  State& s = states_.at(it->second);
  // Sent again with the next commit, unless a later one has been sent since.
  if (s.sent == offset) s.sent = -1;
}

}  // namespace ingestd::plugins
