// sink/kafka: events produced to Kafka topics with librdkafka, acknowledged per batch.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "field_template.h"
#include "ingestd/component.h"
#include "ingestd/json.h"
#include "ingestd/schema.h"
#include "shared/kafka/kafka_client.h"

struct rd_kafka_s;
struct rd_kafka_topic_s;
struct rd_kafka_message_s;

namespace ingestd::plugins {

inline constexpr const char* kKafkaSinkDoc =
    "Produces one Kafka message per event (acks=all, idempotent by default) and acknowledges a "
    "batch only when the brokers acknowledged every message of it; a failure is retryable, so "
    "the core retries, breaks or spools the whole batch (at-least-once).";

inline constexpr OptionSpec kKafkaCreateTopicOptions[] = {
    {.name = "partitions",
     .type = OptionType::kInt,
     .required = true,
     .min = "1",
     .max = "100000",
     .doc = "Partitions of the topic to create."},
    {.name = "replication_factor",
     .type = OptionType::kInt,
     .default_value = "-1",
     .min = "-1",
     .max = "32767",
     .doc =
         "Replicas of each partition; -1 (default) takes the broker's default.replication.factor "
         "(brokers 2.4 and later)."},
};

inline constexpr OptionSpec kKafkaSinkOptions[] = {
    {.name = "brokers",
     .type = OptionType::kStringList,
     .required = true,
     .doc = "Bootstrap brokers as host:port: a list, or one comma-separated string."},
    {.name = "topic",
     .type = OptionType::kString,
     .required = true,
     .doc = "Topic to produce to: a name, or a template taking parts from the event's fields, as "
            "in `logs-{service}` ({{ and }} are literal braces). An event that lacks a field the "
            "template needs is dead-lettered and counted in `missing_field`; the rest of its batch "
            "is written. A literal topic must exist at start (or see create_topic)."},
    {.name = "key",
     .type = OptionType::kString,
     .doc = "Message key template, as in `{user}` or `{device}/{country}`: equal keys go to the "
            "same partition. Unset (default): no key, messages are spread over partitions. An "
            "event that lacks a key field is dead-lettered like one lacking a topic field."},
    json::kEncodingOption,
    {.name = "compression",
     .type = OptionType::kEnum,
     .default_value = "lz4",
     .choices = "none|gzip|snappy|lz4|zstd",
     .doc = "Compression of message batches (librdkafka's compression.codec)."},
    {.name = "delivery_timeout",
     .type = OptionType::kDuration,
     .default_value = "30s",
     .min = "100ms",
     .max = "24h",
     .doc = "How long librdkafka may try to deliver a message (message.timeout.ms). A write waits "
            "for every message of its batch, so during an outage a batch fails back to the core "
            "(retryable) after at most this long instead of piling up inside librdkafka."},
    {.name = "metadata_timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "100ms",
     .max = "10m",
     .doc = "How long start-up waits for the brokers to list their topics (to check that a "
            "literal topic exists) and to create one. Brokers that do not answer in time only "
            "give a warning: the core's retries and breaker handle an outage."},
    {.name = "create_topic",
     .type = OptionType::kObject,
     .doc = "Creates a literal topic that does not exist at start, through the Admin API: "
            "{partitions: N, replication_factor: R}. Unset (default): a missing topic fails "
            "start-up.",
     .children = kKafkaCreateTopicOptions,
     .child_count = 2},
    {.name = "librdkafka",
     .type = OptionType::kStringMap,
     .doc = "More librdkafka client properties as strings (security.protocol, sasl.*, ssl.*, "
            "linger.ms, batch.num.messages, ...; see librdkafka's CONFIGURATION.md), checked at "
            "validation. Properties that the options above set (bootstrap.servers, "
            "compression.codec, message.timeout.ms) are errors here, and so is acks other than "
            "all."},
};

// Produces each batch's events to Kafka and returns when the brokers have answered for all of
// them.
//
// Contract:
// - The factory validates the topic and key templates and every `librdkafka:` property against a
//   scratch rd_kafka_conf_t (no I/O, no threads), reporting each bad one at its own position.
// - start() creates the producer (acks=all, enable.idempotence=true unless overridden; its queue
//   bounded to twice the core's batch limits), lists the cluster's topics within
//   metadata_timeout and fails when a literal topic is missing (unless create_topic creates it:
//   "already exists" is success). Unreachable brokers give a warning, not a failure.
// - write() renders each event's topic, key and payload (raw bytes are not copied: the batch
//   outlives the call, which returns only after every delivery report of the batch arrived),
//   produces them all, then flushes until every report is in. kOk: every message was acknowledged
//   by the brokers, or dead-lettered (a missing template field; an error that is the message's
//   own: too large, an invalid or, for a templated topic, unknown topic). Any other failure makes
//   the whole batch retryable, with the first error and how many failed, and dead-letters
//   nothing; the core resends all of it, so messages acknowledged before may be duplicated
//   (at-least-once). A write never takes much longer than delivery_timeout.
// - A fatal producer error (idempotence broken) fails the batch as retryable and replaces the
//   producer on the next write.
// - Threading: one producer per instance; write() and flush() on the worker's thread. With
//   `workers: N` the N producers write in parallel, and order per partition is no longer kept.
//   librdkafka's own threads log through the context, which is thread-safe; its warnings and
//   errors are limited to one line per 5 s (with the count of those left out).
// Counters: delivered, delivery_failed (messages whose delivery failed and were retried by the
// core), missing_field, dead_lettered (missing fields and messages refused for their own fault),
// queue_full_waits.
class KafkaSink final : public Sink {
 public:
  KafkaSink(const Options& options, Diagnostics& diag);
  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  bool start(Context& ctx) override;
  SinkResult write(Context& ctx, const Batch& batch) override;
  SinkResult flush(Context& ctx) override;

  // librdkafka callbacks (public for the C trampolines only).
  void on_delivery(const rd_kafka_message_s& message);
  void on_log(int level, const char* facility, const char* text);
  void on_error(int err, const char* reason);

 private:
  // One message of the batch being written.
  struct Message {
    uint32_t event = 0;             // index in the batch
    int32_t topic = 0;              // index in topics_
    int err = 0;                    // rd_kafka_resp_err_t, or kPending / kMissing
    const char* payload = nullptr;  // into the batch, or into payloads_
    size_t payload_size = 0;
    size_t payload_offset = 0;  // into payloads_ when offset_payload
    bool offset_payload = false;
    bool missing_in_key = false;
    size_t key_offset = 0;  // into keys_
    size_t key_size = 0;
    std::string_view missing;  // the template field this event lacks
  };
  struct Topic {
    std::string name;
    rd_kafka_topic_s* handle;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  bool create_producer(std::string& error);
  void destroy_producer();
  bool check_topic(Context& ctx);
  bool create_topic(Context& ctx, std::string_view brokers);
  int32_t topic_index(std::string_view name, std::string& error);
  void render(const Batch& batch);
  void produce_all();
  void await_reports();
  SinkResult outcome(Context& ctx, const Batch& batch);
  bool permanent(int err) const;

  std::string brokers_;
  FieldTemplate topic_;
  FieldTemplate key_;
  bool has_key_ = false;
  json::Encoding encoding_;
  int64_t delivery_timeout_ms_;
  int64_t metadata_timeout_ms_;
  int create_partitions_ = 0;  // 0: do not create
  int create_replication_ = -1;
  // Client properties in the order they are applied: ours, then the configured ones.
  kafka::Properties properties_;

  kafka::LimitedLog log_;  // for librdkafka's threads and the worker's
  rd_kafka_s* rk_ = nullptr;
  std::vector<Topic> topics_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> topic_ids_;

  // Per write, reused.
  std::vector<Message> messages_;
  std::string payloads_;
  std::string keys_;
  std::string scratch_;
  size_t outstanding_ = 0;

  Counter* delivered_ = nullptr;
  Counter* delivery_failed_ = nullptr;
  Counter* missing_field_ = nullptr;
  Counter* dead_lettered_ = nullptr;
  Counter* queue_full_waits_ = nullptr;
};

}  // namespace ingestd::plugins
