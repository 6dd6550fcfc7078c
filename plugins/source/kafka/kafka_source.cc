#include "kafka_source.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <regex>

#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr int64_t kMaxPollNs = 100'000'000;  // how soon run() notices a stop
// How long downstream may stay full before the partitions are paused. A pause throws away what
// librdkafka has fetched ahead, to be fetched again on resume; a pipeline that is only briefly
// full is waited for instead, without polling (librdkafka heartbeats on its own thread).
constexpr int64_t kPauseAfterNs = 1'000'000'000;
constexpr size_t kMaxArenaStart = 64 * 1024;  // a batch's first arena block; it grows

// Properties that an option of this source sets, and the option to use instead.
constexpr kafka::OwnedProperty kOwnedProperties[] = {
    {"bootstrap.servers", "brokers"}, {"metadata.broker.list", "brokers"},  {"group.id", "group"},
    {"auto.offset.reset", "start"},   {"topic.auto.offset.reset", "start"},
};

std::string names(const std::vector<TopicPartition>& tps) {
  std::string out;
  for (const TopicPartition& tp : tps)
    out += fmt::format("{}{}[{}]", out.empty() ? "" : " ", tp.topic, tp.partition);
  return out;
}

std::vector<TopicPartition> partitions_of(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i)
    out.push_back(TopicPartition{list->elems[i].topic, list->elems[i].partition});
  return out;
}

void rebalance_trampoline(rd_kafka_t*, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<KafkaSource*>(opaque)->on_rebalance(err, partitions);
}

void commit_trampoline(rd_kafka_t*, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  static_cast<KafkaSource*>(opaque)->on_commit(err, offsets);
}

void log_trampoline(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  if (void* opaque = rd_kafka_opaque(rk))
    static_cast<KafkaSource*>(opaque)->log().librdkafka_log(level, facility, text);
}

void error_trampoline(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<KafkaSource*>(opaque)->log().warn(fmt::format(
      "Kafka error {}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason));
}

}  // namespace

KafkaSource::KafkaSource(const Options& options, Diagnostics& diag)
    : group_(options.get_string("group")),
      commit_interval_ns_(options.get_duration_ns("commit_interval", 1'000'000'000)),
      rebalance_timeout_ns_(options.get_duration_ns("rebalance_timeout", 10'000'000'000)),
      lag_interval_ns_(options.get_duration_ns("lag_interval", 5'000'000'000)),
      start_latest_(options.get_string("start", "earliest") == "latest") {
  brokers_ = kafka::bootstrap_servers(options, diag);
  if (group_.empty()) diag.error("group", "must not be empty");

  const bool by_name = options.has("topics");
  const bool by_pattern = options.has("topic_pattern");
  if (by_name && by_pattern) {
    diag.error("topic_pattern", "set either `topics` or `topic_pattern`, not both");
  } else if (!by_name && !by_pattern) {
    diag.error("",
               "needs `topics` (a list of topic names) or `topic_pattern` (a regular "
               "expression)");
  } else if (by_name) {
    topics_ = options.get_list("topics");
    if (topics_.empty()) diag.error("topics", "needs at least one topic");
    for (const std::string& topic : topics_)
      if (!kafka::topic_name_ok(topic))
        diag.error("topics", fmt::format("'{}' is not a valid Kafka topic name: at most {} of "
                                         "the characters a-z A-Z 0-9 . _ -",
                                         topic, kafka::kMaxTopicLength));
  } else {
    std::string pattern = options.get_string("topic_pattern");
    if (!pattern.empty() && pattern.front() == '^') pattern.erase(0, 1);
    if (!pattern.empty() && pattern.back() == '$') pattern.pop_back();
    try {
      std::regex check(pattern, std::regex::extended);
      if (pattern.empty()) diag.error("topic_pattern", "must not be empty");
    } catch (const std::regex_error& e) {
      diag.error("topic_pattern",
                 fmt::format("'{}' is not a valid regular expression: {}", pattern, e.what()));
    }
    // librdkafka takes a subscription that starts with '^' as a regular expression.
    topics_ = {"^(" + pattern + ")$"};
  }

  const std::string strategy = "cooperative-sticky";
  properties_ = kafka::checked_properties(
      {
          {"bootstrap.servers", brokers_},
          {"group.id", group_},
          {"client.id", "ingestd"},
          {"auto.offset.reset", options.get_string("start", "earliest")},
          {"enable.auto.commit", "false"},
          {"enable.auto.offset.store", "false"},
          {"partition.assignment.strategy", strategy},
      },
      options, kOwnedProperties,
      [](std::string_view name, std::string_view value) -> std::string {
        if ((name == "enable.auto.commit" || name == "auto.commit.enable" ||
             name == "enable.auto.offset.store") &&
            value != "false")
          return fmt::format(
              "'{}' must stay false: the source commits only what the pipeline "
              "acknowledged (use commit_interval)",
              name);
        return {};
      },
      diag);

  for (const auto& [name, value] : properties_) {
    if (name != "max.poll.interval.ms") continue;
    const int64_t ms = std::strtoll(value.c_str(), nullptr, 10);
    if (ms * 1'000'000 <= rebalance_timeout_ns_)
      diag.error("rebalance_timeout",
                 fmt::format("must stay below librdkafka's max.poll.interval.ms ({} ms): a revoke "
                             "waits this long inside a poll",
                             ms));
  }
}

KafkaSource::~KafkaSource() {
  stop_lag();
  // The context may go before the source: librdkafka's last callbacks and lines are not passed on.
  ctx_ = nullptr;
  log_.attach(nullptr);
  if (rk_ == nullptr) return;
  if (!closing_) {
    closing_ = true;
    rd_kafka_consumer_close(rk_);
  }
  rd_kafka_queue_destroy(queue_);
  rd_kafka_destroy(rk_);
}

bool KafkaSource::start(Context& ctx) {
  ctx_ = &ctx;
  log_.attach(&ctx);
  messages_ = &ctx.counter("messages");
  bytes_ = &ctx.counter("bytes");
  empty_ = &ctx.counter("empty");
  batches_ = &ctx.counter("batches");
  commits_ = &ctx.counter("commits");
  commit_failed_ = &ctx.counter("commit_failed");
  acks_failed_ = &ctx.counter("acks_failed");
  rebalances_ = &ctx.counter("rebalances");
  assigned_ = &ctx.counter("assigned");
  revoked_ = &ctx.counter("revoked");
  lost_ = &ctx.counter("lost");
  abandoned_ = &ctx.counter("abandoned");
  paused_ = &ctx.counter("paused");
  consumer_errors_ = &ctx.counter("consumer_errors");

  limits_ = ctx.batch_limits();
  limits_.max_events = std::max<size_t>(limits_.max_events, 1);
  limits_.max_bytes = std::max<size_t>(limits_.max_bytes, 1);

  std::string error;
  rd_kafka_conf_t* conf = kafka::new_conf(properties_, error);
  if (conf == nullptr) {
    ctx.logf(LogLevel::kError, "cannot configure the Kafka consumer: {}", error);
    return false;
  }
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, &rebalance_trampoline);
  rd_kafka_conf_set_log_cb(conf, &log_trampoline);
  rd_kafka_conf_set_error_cb(conf, &error_trampoline);
  char errstr[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    ctx.logf(LogLevel::kError, "cannot create the Kafka consumer: {}", errstr);
    return false;
  }
  // Rebalances, commit results and messages all arrive through rd_kafka_consumer_poll().
  rd_kafka_poll_set_consumer(rk_);
  queue_ = rd_kafka_queue_get_consumer(rk_);

  rd_kafka_topic_partition_list_t* subscription =
      rd_kafka_topic_partition_list_new(static_cast<int>(topics_.size()));
  for (const std::string& topic : topics_)
    rd_kafka_topic_partition_list_add(subscription, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, subscription);
  rd_kafka_topic_partition_list_destroy(subscription);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ctx.logf(LogLevel::kError, "cannot subscribe to {}: {}", fmt::join(topics_, ", "),
             kafka::err_text(err));
    return false;
  }
  ctx.logf(LogLevel::kInfo, "consuming {} in group {} at {}", fmt::join(topics_, ", "), group_,
           brokers_);
  if (lag_interval_ns_ > 0) {
    auto report = [this](int64_t Lag::*field) {
      return [this, field](std::vector<GaugeSample>& out) {
        std::lock_guard lock(lag_mu_);
        for (const Lag& l : lag_)
          if (l.*field >= 0)
            out.push_back({{{"topic", l.topic}, {"partition", std::to_string(l.partition)}},
                           static_cast<double>(l.*field)});
      };
    };
    ctx.gauges("kafka_consumer_lag",
               "Messages of a partition that the consumer group has not committed: its high "
               "watermark minus the group's committed offset (with none yet, where the group "
               "starts: the log start, or with start: latest what this source has read to), per "
               "partition a Kafka source owns, sampled every lag_interval.",
               report(&Lag::committed_lag));
    ctx.gauges("kafka_consumer_read_lag",
               "Messages of a partition that a Kafka source has not read yet: its high watermark "
               "minus the next offset to read, sampled every lag_interval.",
               report(&Lag::read_lag));
    lag_thread_ = std::thread([this] { lag_loop(); });
  }
  return true;
}

void KafkaSource::lag_loop() {
  std::unique_lock lock(lag_mu_);
  while (!lag_stop_) {
    lock.unlock();
    sample_lag();
    lock.lock();
    lag_cv_.wait_for(lock, std::chrono::nanoseconds(lag_interval_ns_),
                     [this] { return lag_stop_; });
  }
}

void KafkaSource::sample_lag() {
  constexpr int kTimeoutMs = 2000;  // per broker question; a stop waits for at most one
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(rk_, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  std::vector<Lag> sample;
  rd_kafka_topic_partition_list_t* committed = rd_kafka_topic_partition_list_copy(assigned);
  const bool have_committed = assigned->cnt > 0 && rd_kafka_committed(rk_, committed, kTimeoutMs) ==
                                                       RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_position(rk_, assigned);  // the offset after the last message polled, per partition
  for (int i = 0; i < assigned->cnt; ++i) {
    {
      std::lock_guard lock(lag_mu_);
      if (lag_stop_) break;
    }
    const rd_kafka_topic_partition_t& p = assigned->elems[i];
    int64_t low = 0;
    int64_t high = 0;
    if (rd_kafka_query_watermark_offsets(rk_, p.topic, p.partition, &low, &high, kTimeoutMs) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
      continue;
    Lag& l = sample.emplace_back();
    l.topic = p.topic;
    l.partition = p.partition;
    // After the last message polled, when one has been.
    const int64_t polled = p.err == RD_KAFKA_RESP_ERR_NO_ERROR && p.offset >= 0 ? p.offset : -1;
    // Where the group stands: its committed offset. With none yet, where it starts: the log
    // start (start: earliest), or where this consumer has read to (start: latest; the log end
    // before it has read anything), so a new group reading only new data shows no old backlog.
    int64_t group = -1;
    if (have_committed && committed->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const int64_t c = committed->elems[i].offset;
      group = c >= 0 ? c : !start_latest_ ? low : polled >= 0 ? polled : high;
      l.committed_lag = std::max<int64_t>(high - group, 0);
    }
    // The next offset to read: after the last message polled, or where the group stands when
    // none of the partition has been polled yet.
    const int64_t next = polled >= 0 ? polled : group;
    if (next >= 0) l.read_lag = std::max<int64_t>(high - next, 0);
  }
  rd_kafka_topic_partition_list_destroy(committed);
  rd_kafka_topic_partition_list_destroy(assigned);
  std::lock_guard lock(lag_mu_);
  if (!lag_stop_) lag_ = std::move(sample);
}

void KafkaSource::stop_lag() {
  {
    std::lock_guard lock(lag_mu_);
    lag_stop_ = true;
    lag_.clear();  // what the gauges show of a consumer that has stopped: nothing
  }
  lag_cv_.notify_all();
  if (lag_thread_.joinable()) lag_thread_.join();
}

void KafkaSource::run(Context& ctx, Output& out) {
  int64_t next_commit = ctx.clock().monotonic_ns() + commit_interval_ns_;
  bool accepted = true;
  while (accepted && !ctx.stopping()) {
    drain_acks();
    int64_t now = ctx.clock().monotonic_ns();
    if (now >= next_commit) {
      commit(tracker_.commits(), false);
      next_commit = now + commit_interval_ns_;
    }
    int64_t deadline = std::min(next_commit, now + kMaxPollNs);
    if (!push_held(out) || !push_lingering(ctx, out, now, deadline)) break;
    if (!held_.empty()) {
      const int64_t pause_at = held_since_ + kPauseAfterNs;
      if (!paused_now_ && now < pause_at) {
        out.wait_writable(std::min(deadline, pause_at) - now);
        continue;
      }
      pause(true);
      // Paused: wait for room downstream, then poll without waiting (rebalances, commits).
      out.wait_writable(std::max<int64_t>(deadline - now, 0));
      deadline = now;
    }
    const int timeout_ms = static_cast<int>(std::max<int64_t>(deadline - now, 0) / 1'000'000);
    // The first message waits up to the next deadline; the ones already fetched follow without
    // waiting, up to a batch's worth before the bookkeeping above runs again.
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk_, timeout_ms);
    for (size_t n = 0; message != nullptr; ++n) {
      accepted = take(ctx, out, *message);
      rd_kafka_message_destroy(message);
      if (!accepted || !held_.empty() || n >= limits_.max_events) break;
      message = rd_kafka_consumer_poll(rk_, 0);
    }
  }
  shutdown(ctx, out);
}

bool KafkaSource::take(Context& ctx, Output& out, rd_kafka_message_t& message) {
  if (message.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    consumer_error(message);
    return true;
  }
  if (!current_ || current_->rkt != message.rkt || current_->partition != message.partition) {
    TopicPartition tp{rd_kafka_topic_name(message.rkt), message.partition};
    if (!tracker_.assigned(tp)) return true;  // fetched before its partition was revoked
    current_ = Current{message.rkt, message.partition, open_.try_emplace(std::move(tp)).first};
  }
  Open& o = current_->it->second;
  const bool first = o.batch == nullptr;
  if (first) {
    o.batch = std::make_unique<Batch>(std::min(limits_.max_bytes, kMaxArenaStart) + 4096);
    o.batch->reserve(std::min<size_t>(limits_.max_events, 4096), 0);
    o.batch->ingest_time_ns = ctx.clock().now_ns();
    o.first = message.offset;
    o.opened_ns = ctx.clock().monotonic_ns();
  }
  o.last = message.offset;
  messages_->add();

  std::optional<std::string_view> key;
  if (message.key != nullptr) key.emplace(static_cast<const char*>(message.key), message.key_len);
  if (first) {
    o.one_key = key.has_value();
    if (key) o.key.emplace(*key);
  } else if (o.one_key && (!key || *key != *o.key)) {
    o.one_key = false;
  }

  if (message.payload == nullptr || message.len == 0) {
    empty_->add();
  } else {
    // librdkafka's buffers carry no padding (Batch contract): the value is copied into the arena.
    std::string_view raw = o.batch->copy({static_cast<const char*>(message.payload), message.len});
    rd_kafka_timestamp_type_t type;
    const int64_t ms = rd_kafka_message_timestamp(&message, &type);
    o.batch->add(raw, ms >= 0 ? ms * 1'000'000 : o.batch->ingest_time_ns);
    bytes_->add(message.len);
  }
  if (o.batch->size() >= limits_.max_events || o.batch->raw_bytes() >= limits_.max_bytes) {
    const TopicPartition tp = current_->it->first;  // push_open() erases the entry
    return push_open(ctx, out, tp);
  }
  return true;
}

void KafkaSource::consumer_error(const rd_kafka_message_t& message) {
  if (message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;  // only if configured: not an error
  consumer_errors_->add();
  std::string text;
  switch (message.err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      text = fmt::format(
          "a subscribed topic is not available at {}: {}; consuming the others and "
          "waiting for it",
          brokers_, rd_kafka_message_errstr(&message));
      break;
    default:
      text = fmt::format("consumer error: {} ({})", rd_kafka_message_errstr(&message),
                         rd_kafka_err2name(message.err));
      break;
  }
  // A new kind of error is always logged; repeats share librdkafka's rate limit.
  if (text != last_error_ && ctx_ != nullptr) {
    ctx_->log(LogLevel::kWarn, text);
    last_error_ = text;
  } else {
    log_.warn(text);
  }
}

bool KafkaSource::push_open(Context& ctx, Output& out, const TopicPartition& tp) {
  auto it = open_.find(tp);
  if (it == open_.end()) return true;
  Open o = std::move(it->second);
  current_.reset();
  open_.erase(it);
  const OffsetTracker::Ticket ticket = tracker_.track(tp, o.first, o.last);
  if (o.batch->empty()) {  // only messages without a value: nothing to wait for
    tracker_.ack(ticket, true);
    return true;
  }
  Batch& batch = *o.batch;
  batch.origin.component = std::string(ctx.name());
  batch.origin.topic = tp.topic;
  batch.origin.partition = tp.partition;
  batch.origin.offset = o.first;
  batch.origin.end_offset = o.last + 1;
  if (o.one_key) batch.origin.key = std::move(o.key);
  batch.acks.push_back(make_ack(ticket));
  batches_->add();
  return deliver(out, std::move(o.batch));
}

bool KafkaSource::push_lingering(Context& ctx, Output& out, int64_t now, int64_t& next_deadline) {
  std::vector<TopicPartition> due;
  for (const auto& [tp, o] : open_) {
    const int64_t at = o.opened_ns + limits_.linger_ns;
    if (at <= now)
      due.push_back(tp);
    else
      next_deadline = std::min(next_deadline, at);
  }
  for (const TopicPartition& tp : due)
    if (!push_open(ctx, out, tp)) return false;
  return true;
}

// Hands a batch to the pipeline without blocking. When a downstream queue is full the batch is
// held, in order behind any held before it, and run() stops taking messages: it waits for room
// for up to kPauseAfterNs, then pauses every assigned partition, and the poll loop goes on
// serving rebalances and commits while nothing new is fetched, so memory stays bounded and the
// group does not take this member for dead. Returns false when the pipeline refused the batch
// because it is stopping. While draining at stop, pushes block instead.
bool KafkaSource::deliver(Output& out, BatchPtr batch) {
  if (draining_) return out.push(std::move(batch));
  if (!held_.empty()) {
    held_.push_back(std::move(batch));
    return true;
  }
  switch (out.try_push(batch)) {
    case PushResult::kOk:
      return true;
    case PushResult::kStopped:
      return false;
    case PushResult::kFull:
      break;
  }
  held_.push_back(std::move(batch));
  held_since_ = ctx_->clock().monotonic_ns();
  return true;
}

// Offers the held batches again, oldest first; resumes the partitions once all are taken.
// Returns false when the pipeline is stopping.
bool KafkaSource::push_held(Output& out) {
  while (!held_.empty()) {
    const PushResult r = out.try_push(held_.front());
    if (r == PushResult::kFull) return true;
    held_.pop_front();  // taken (kStopped: taken and discarded, acks failed)
    if (r == PushResult::kStopped) return false;
  }
  pause(false);
  return true;
}

// Pauses (or resumes) fetching for the whole assignment.
void KafkaSource::pause(bool on) {
  if (paused_now_ == on) return;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (on)
      rd_kafka_pause_partitions(rk_, assignment);
    else
      rd_kafka_resume_partitions(rk_, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
  }
  paused_now_ = on;
  if (on) paused_->add();
  ctx_->log(LogLevel::kDebug, on ? "downstream is full: partitions paused"
                                 : "downstream has room: partitions resumed");
}

// The one ack of a batch. The callback runs on whichever thread settles the batch (possibly this
// one, inside try_push): it only posts to the inbox, which it keeps alive itself, so a late ack
// after the source is gone is harmless.
AckRef KafkaSource::make_ack(const OffsetTracker::Ticket& ticket) {
  // Replayable: a failed batch's offsets are not committed, so the group reads them again.
  return AckRef::make(
      [inbox = inbox_, ticket](bool ok) {
        {
          std::lock_guard lock(inbox->mu);
          inbox->settled.push_back(Inbox::Settled{ticket, ok});
        }
        inbox->cv.notify_all();
      },
      AckRef::Replay::kYes);
}

void KafkaSource::drain_acks() {
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->settled.empty()) return;
    settled_.swap(inbox_->settled);
  }
  for (const Inbox::Settled& s : settled_) {
    const TopicPartition* tp = tracker_.partition_of(s.ticket);
    const TopicPartition where = tp ? *tp : TopicPartition{};
    const int64_t committable = tp ? tracker_.committable(*tp) : -1;
    if (tracker_.ack(s.ticket, s.ok) == OffsetTracker::Outcome::kFailed) {
      acks_failed_->add();
      log_.warn(
          fmt::format("a batch of {}[{}] failed in the pipeline; commits of that partition "
                      "stop {} (later data is delivered again after a restart or a "
                      "rebalance)",
                      where.topic, where.partition,
                      committable >= 0 ? fmt::format("at or before offset {}", committable)
                                       : std::string("before it")));
    } else if (!s.ok) {
      acks_failed_->add();
    }
  }
  settled_.clear();
}

void KafkaSource::await_acks(const std::vector<TopicPartition>& tps, int64_t timeout_ns) {
  const int64_t deadline = ctx_->clock().monotonic_ns() + timeout_ns;
  for (;;) {
    drain_acks();
    size_t pending = 0;
    if (tps.empty()) {
      pending = tracker_.in_flight();
    } else {
      for (const TopicPartition& tp : tps) pending += tracker_.in_flight(tp);
    }
    if (pending == 0) return;
    const int64_t now = ctx_->clock().monotonic_ns();
    if (now >= deadline) {
      abandoned_->add(pending);
      if (ctx_ != nullptr)
        ctx_->logf(LogLevel::kWarn,
                   "{} batches not acknowledged within rebalance_timeout ({} ms); their messages "
                   "are not committed and will be delivered again",
                   pending, timeout_ns / 1'000'000);
      return;
    }
    std::unique_lock lock(inbox_->mu);
    inbox_->cv.wait_for(lock, std::chrono::nanoseconds(std::min(deadline - now, kMaxPollNs)),
                        [&] { return !inbox_->settled.empty(); });
  }
}

void KafkaSource::commit(const std::vector<OffsetTracker::Commit>& commits, bool sync) {
  if (commits.empty() || rk_ == nullptr) return;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(commits.size()));
  for (const OffsetTracker::Commit& c : commits) {
    rd_kafka_topic_partition_list_add(list, c.tp.topic.c_str(), c.tp.partition)->offset = c.offset;
    tracker_.sent(c.tp, c.offset);
  }
  // The result arrives through on_commit: served by this call when sync, else by a later poll.
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_, list, sync ? nullptr : queue_, &commit_trampoline, this);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && !sync) on_commit(err, list);
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaSource::on_commit(int err, const rd_kafka_topic_partition_list_t* offsets) {
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET || ctx_ == nullptr) return;
  std::string failed;
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = offsets->elems[i];
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && p.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    tracker_.commit_failed(TopicPartition{p.topic, p.partition}, p.offset);
    if (failed.empty())
      failed = fmt::format("{}[{}] at {}: {}", p.topic, p.partition, p.offset,
                           kafka::err_text(p.err ? p.err : err));
  }
  if (failed.empty() && err != RD_KAFKA_RESP_ERR_NO_ERROR) failed = kafka::err_text(err);
  if (failed.empty()) {
    commits_->add();
    return;
  }
  commit_failed_->add();
  log_.warn(fmt::format("committing offsets of group {} failed ({}); retried with the next commit",
                        group_, failed));
}

void KafkaSource::on_rebalance(int err, rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_), "COOPERATIVE") == 0;
  if (ctx_ == nullptr) {  // being destroyed: only keep librdkafka's state in step
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) return;
    if (cooperative)
      rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk_, partitions));
    else
      rd_kafka_assign(rk_, nullptr);
    return;
  }
  rebalances_->add();
  const std::vector<TopicPartition> tps = partitions_of(partitions);
  rd_kafka_error_t* error = nullptr;
  rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (const TopicPartition& tp : tps) tracker_.assign(tp);
    assigned_->add(tps.size());
    // A cooperative rebalance ends with an (often empty) assignment for every member.
    ctx_->logf(tps.empty() ? LogLevel::kDebug : LogLevel::kInfo, "assigned {} partitions ({}): {}",
               tps.size(), rd_kafka_rebalance_protocol(rk_), names(tps));
    if (cooperative)
      error = rd_kafka_incremental_assign(rk_, partitions);
    else
      assign_err = rd_kafka_assign(rk_, partitions);
    if (paused_now_) rd_kafka_pause_partitions(rk_, partitions);  // they wait for room too
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    revoke(tps, rd_kafka_assignment_lost(rk_) != 0);
    if (cooperative)
      error = rd_kafka_incremental_unassign(rk_, partitions);
    else
      assign_err = rd_kafka_assign(rk_, nullptr);
  } else {
    ctx_->logf(LogLevel::kError, "rebalance failed: {}; giving up every partition",
               kafka::err_text(err));
    revoke(tracker_.partitions(), true);
    assign_err = rd_kafka_assign(rk_, nullptr);
  }
  if (error != nullptr) {
    ctx_->logf(LogLevel::kError, "cannot apply the rebalance: {}", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if (assign_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ctx_->logf(LogLevel::kError, "cannot apply the rebalance: {}", kafka::err_text(assign_err));
  }
}

void KafkaSource::revoke(const std::vector<TopicPartition>& tps, bool lost) {
  current_.reset();
  for (const TopicPartition& tp : tps) open_.erase(tp);  // never pushed, fetched again later
  // Held batches of these partitions were never taken: their acks fail, so the commit below stops
  // before them, and whoever takes the partitions reads them again.
  std::erase_if(held_, [&](const BatchPtr& b) {
    return std::find(tps.begin(), tps.end(),
                     TopicPartition{*b->origin.topic, *b->origin.partition}) != tps.end();
  });
  if (lost) {
    lost_->add(tps.size());
    ctx_->logf(
        LogLevel::kWarn,
        "lost {} partitions without a revoke (this member was out of the group): "
        "nothing is committed for them; {} batches in flight are delivered again: {}",
        tps.size(),
        [&] {
          size_t n = 0;
          for (const TopicPartition& tp : tps) n += tracker_.in_flight(tp);
          return n;
        }(),
        names(tps));
  } else {
    // At stop, shutdown() has waited (and counted what it gave up on) already.
    if (closing_)
      drain_acks();
    else
      await_acks(tps, rebalance_timeout_ns_);
    commit(tracker_.commits(tps), true);
    ctx_->logf(LogLevel::kInfo, "revoked {} partitions: {}", tps.size(), names(tps));
  }
  for (const TopicPartition& tp : tps) tracker_.revoke(tp);
  revoked_->add(tps.size());
}

void KafkaSource::shutdown(Context& ctx, Output& out) {
  // What was polled goes out too: the pipeline is still draining, and its acks may come in time.
  draining_ = true;
  while (!held_.empty()) {
    BatchPtr batch = std::move(held_.front());
    held_.pop_front();
    if (!out.push(std::move(batch))) {
      held_.clear();
      current_.reset();
      open_.clear();
      break;
    }
  }
  std::vector<TopicPartition> open;
  for (const auto& [tp, _] : open_) open.push_back(tp);
  for (const TopicPartition& tp : open) {
    if (!push_open(ctx, out, tp)) {
      current_.reset();
      open_.clear();
      break;
    }
  }
  // Nothing more comes from here: an aggregator downstream settles its windows now, not after
  // this source has given up waiting for them.
  out.close();
  await_acks({}, rebalance_timeout_ns_);
  commit(tracker_.commits(), true);
  stop_lag();
  closing_ = true;
  // Leaves the group: the final revoke (on_rebalance) commits anything acknowledged since.
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    ctx.logf(LogLevel::kWarn, "closing the Kafka consumer: {}", kafka::err_text(err));
  ctx.logf(LogLevel::kInfo, "left group {}", group_);
}

}  // namespace ingestd::plugins
