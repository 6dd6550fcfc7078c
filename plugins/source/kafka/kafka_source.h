// source/kafka: records consumed from Kafka topics in a consumer group, committed once the
// pipeline acknowledged them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/schema.h"
#include "offset_tracker.h"
#include "shared/kafka/kafka_client.h"

struct rd_kafka_s;
struct rd_kafka_queue_s;
struct rd_kafka_message_s;
struct rd_kafka_topic_s;
struct rd_kafka_topic_partition_list_s;

namespace ingestd::plugins {

inline constexpr const char* kKafkaSourceDoc =
    "Consumes Kafka topics in a consumer group, one event per message (its value as raw bytes; "
    "the message timestamp as event time), in batches per partition. Offsets are committed only "
    "when the pipeline has acknowledged every earlier message of the partition (at-least-once).";

inline constexpr OptionSpec kKafkaSourceOptions[] = {
    {.name = "brokers",
     .type = OptionType::kStringList,
     .required = true,
     .doc = "Bootstrap brokers as host:port: a list, or one comma-separated string."},
    {.name = "group",
     .type = OptionType::kString,
     .required = true,
     .doc = "Consumer group id. Daemons with the same group share the partitions of the topics; "
            "the group's committed offsets say where a restarted daemon goes on."},
    {.name = "topics",
     .type = OptionType::kStringList,
     .doc = "Topics to consume. Exactly one of `topics` and `topic_pattern`."},
    {.name = "topic_pattern",
     .type = OptionType::kString,
     .doc = "A regular expression: every topic whose whole name matches it is consumed, "
            "including topics created later (librdkafka checks every "
            "topic.metadata.refresh.interval.ms). Exactly one of `topics` and `topic_pattern`."},
    {.name = "start",
     .type = OptionType::kEnum,
     .default_value = "earliest",
     .choices = "earliest|latest",
     .doc = "Where a partition starts when the group has no committed offset for it (a new "
            "group; librdkafka's auto.offset.reset): `earliest` reads what the topic holds, "
            "`latest` only what arrives from now on."},
    {.name = "commit_interval",
     .type = OptionType::kDuration,
     .default_value = "1s",
     .min = "10ms",
     .max = "1h",
     .doc = "How often the acknowledged offsets are committed (asynchronously). They are also "
            "committed, synchronously, when partitions are revoked and at stop. A crash repeats "
            "at most what was acknowledged in the last interval, plus what was in flight."},
    {.name = "rebalance_timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "0s",
     .max = "10m",
     .doc = "How long a revoke (a rebalance taking partitions away) and a stop wait for the "
            "batches of those partitions still in the pipeline to be acknowledged before what is "
            "acknowledged is committed and the partitions are given up. What is not acknowledged "
            "by then is delivered again to the next owner. Must stay below "
            "max.poll.interval.ms (300 s by default)."},
    {.name = "lag_interval",
     .type = OptionType::kDuration,
     .default_value = "5s",
     .min = "0s",
     .max = "1h",
     .doc = "How often the consumer lag of the partitions this source owns is asked of the "
            "brokers (high watermark, the group's committed offset) for the admin API's "
            "ingestd_kafka_consumer_lag and ingestd_kafka_consumer_read_lag gauges; 0s turns "
            "it off. The questions go from a thread of their own, so a slow broker never holds "
            "up consumption."},
    {.name = "librdkafka",
     .type = OptionType::kStringMap,
     .doc = "More librdkafka consumer properties as strings (security.protocol, sasl.*, ssl.*, "
            "fetch.max.bytes, session.timeout.ms, max.poll.interval.ms, "
            "partition.assignment.strategy, ...; see librdkafka's CONFIGURATION.md), checked at "
            "validation. Properties that the options above set (bootstrap.servers, group.id, "
            "auto.offset.reset) are errors here, and so is turning on enable.auto.commit or "
            "enable.auto.offset.store: the source commits what the pipeline acknowledged."},
};

// Consumes Kafka topics as one member of a consumer group and commits what the pipeline
// acknowledged.
//
// Contract:
// - The factory checks the options and every `librdkafka:` property against a scratch
//   rd_kafka_conf_t (no I/O, no threads), reporting each bad one at its own position.
// - start() creates the consumer (enable.auto.commit=false, enable.auto.offset.store=false,
//   cooperative-sticky assignment unless configured otherwise) and subscribes. Unreachable
//   brokers and missing topics are logged (rate-limited), never fatal: librdkafka keeps trying.
// - run() polls on the source's thread. Each message's value is copied into the arena of its
//   partition's open batch (one event; time = the message timestamp, else ingest time; messages
//   without a value are skipped and counted as `empty`, their offsets still committed). A batch is
//   pushed when it reaches the core's batch limits or has lingered for linger_ns. Its origin
//   holds topic, partition, the first offset and, when every message of it had the same key,
//   that key; it carries one ack.
// - Offsets: per partition, OffsetTracker lets a commit pass only the acknowledged prefix; a
//   failed ack blocks the partition's commits at that batch (logged, counted; the data is
//   delivered again after a restart or rebalance). Commits are asynchronous every
//   commit_interval, synchronous on revoke and at stop.
// - Rebalance (on the poll thread, inside librdkafka's callback): assigned partitions start
//   afresh; revoked ones lose their open batch (never pushed, so never acknowledged), then the
//   callback waits up to rebalance_timeout for their in-flight acks, commits the acknowledged
//   offsets synchronously and gives the partitions up (incremental_unassign when cooperative).
//   Lost partitions (the member was fenced) are given up without a commit.
// - Stop: ctx.stopping() ends polling; open batches are pushed, acks awaited up to
//   rebalance_timeout, offsets committed synchronously, the consumer closed (leaving the group).
// - Backpressure: batches go out with Output::try_push. When the pipeline is full, the refused
//   batch is held (later ones queue behind it) and every assigned partition is paused; polling
//   goes on (rebalances, commits, acks) and the held batches are offered again as soon as
//   wait_writable() says there is room, then the partitions are resumed. Memory is bounded by
//   the open batches, the held ones and what librdkafka had fetched before the pause.
// - Threading: start() and run() on the source's thread (run() notices a stop within 100 ms, or
//   within rebalance_timeout while a revoke waits for acks); acks on any thread, handed to the poll
//   thread through a mutex-protected inbox that outlives the source.
// - Lag: unless lag_interval is 0, a thread of the source's own (started at the end of start(),
//   stopped before the consumer closes) asks the brokers every lag_interval for the assigned
//   partitions' high watermarks and the group's committed offsets, and reads librdkafka's
//   position; the gauges (Context::gauges()) report the last sample.
// Counters: messages, bytes, empty, batches, commits, commit_failed, acks_failed, rebalances,
// assigned, revoked, lost, abandoned (batches whose ack was not in when a revoke or stop stopped
// waiting), paused (times the partitions were paused for backpressure), consumer_errors.
class KafkaSource final : public Source {
 public:
  KafkaSource(const Options& options, Diagnostics& diag);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

  // librdkafka callbacks (public for the C trampolines only).
  void on_rebalance(int err, rd_kafka_topic_partition_list_s* partitions);
  void on_commit(int err, const rd_kafka_topic_partition_list_s* offsets);
  kafka::LimitedLog& log() { return log_; }

 private:
  // Acks of batches in flight, from whichever thread drops a batch's last reference to the poll
  // thread. Shared with the ack callbacks, so that a late ack finds it even after the source.
  struct Inbox {
    struct Settled {
      OffsetTracker::Ticket ticket;
      bool ok;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Settled> settled;  // mu
  };
  // The batch being filled for one partition.
  struct Open {
    BatchPtr batch;
    int64_t first = -1;
    int64_t last = -1;
    int64_t opened_ns = 0;  // monotonic
    std::optional<std::string> key;
    bool one_key = true;
  };

  bool take(Context& ctx, Output& out, rd_kafka_message_s& message);
  void consumer_error(const rd_kafka_message_s& message);
  bool push_open(Context& ctx, Output& out, const TopicPartition& tp);
  bool push_lingering(Context& ctx, Output& out, int64_t now, int64_t& next_deadline);
  bool deliver(Output& out, BatchPtr batch);
  bool push_held(Output& out);
  void pause(bool on);
  AckRef make_ack(const OffsetTracker::Ticket& ticket);
  void drain_acks();
  // Waits until no batch of `tps` (of every partition when empty) is in flight, or the deadline.
  void await_acks(const std::vector<TopicPartition>& tps, int64_t timeout_ns);
  void commit(const std::vector<OffsetTracker::Commit>& commits, bool sync);
  void revoke(const std::vector<TopicPartition>& tps, bool lost);
  void shutdown(Context& ctx, Output& out);
  void lag_loop();
  void sample_lag();
  void stop_lag();

  std::string brokers_;
  std::string group_;
  std::vector<std::string> topics_;  // names, or one "^regex"
  int64_t commit_interval_ns_;
  int64_t rebalance_timeout_ns_;
  int64_t lag_interval_ns_;
  bool start_latest_;  // start: latest (where a partition starts when the group has no offset)
  kafka::Properties properties_;

  kafka::LimitedLog log_;
  Context* ctx_ = nullptr;
  rd_kafka_s* rk_ = nullptr;
  rd_kafka_queue_s* queue_ = nullptr;  // the consumer queue, for async commit results
  BatchLimits limits_;
  bool closing_ = false;

  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::vector<Inbox::Settled> settled_;  // drained from inbox_, reused
  OffsetTracker tracker_;
  std::map<TopicPartition, Open> open_;
  // The open batch the last message went to: librdkafka hands out long runs of one partition, so
  // most messages skip the lookups. Reset whenever an entry of open_ is erased or the assignment
  // changes (forget_current()).
  struct Current {
    const rd_kafka_topic_s* rkt = nullptr;
    int32_t partition = -1;
    std::map<TopicPartition, Open>::iterator it;
  };
  std::optional<Current> current_;
  std::deque<BatchPtr> held_;  // refused by a full pipeline, in order (see deliver())
  int64_t held_since_ = 0;     // monotonic: when held_ last became non-empty
  bool paused_now_ = false;
  bool draining_ = false;   // stop: pushes block
  std::string last_error_;  // the last consumer error logged, to log a repeat only when limited

  Counter* messages_ = nullptr;
  Counter* bytes_ = nullptr;
  Counter* empty_ = nullptr;
  Counter* batches_ = nullptr;
  Counter* commits_ = nullptr;
  Counter* commit_failed_ = nullptr;
  Counter* acks_failed_ = nullptr;
  Counter* rebalances_ = nullptr;
  Counter* assigned_ = nullptr;
  Counter* revoked_ = nullptr;
  Counter* lost_ = nullptr;
  Counter* abandoned_ = nullptr;
  Counter* paused_ = nullptr;
  Counter* consumer_errors_ = nullptr;

  // The last lag sample, per assigned partition (-1: not known).
  struct Lag {
    std::string topic;
    int32_t partition = 0;
    int64_t committed_lag = -1;  // high watermark - committed offset (see sample_lag())
    int64_t read_lag = -1;       // high watermark - next offset to read
  };
  std::thread lag_thread_;
  std::mutex lag_mu_;
  std::condition_variable lag_cv_;
  bool lag_stop_ = false;  // lag_mu_
  std::vector<Lag> lag_;   // lag_mu_
};

}  // namespace ingestd::plugins
