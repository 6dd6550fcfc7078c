#include "kafka_sink.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <memory>
#include <mutex>

#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr int kPending = INT_MIN;      // produced, its delivery report not in yet
constexpr int kMissing = INT_MIN + 1;  // a template field is missing: never produced

// Properties that an option of this sink sets, and the option to use instead.
constexpr kafka::OwnedProperty kOwnedProperties[] = {
    {"bootstrap.servers", "brokers"},           {"metadata.broker.list", "brokers"},
    {"compression.codec", "compression"},       {"compression.type", "compression"},
    {"message.timeout.ms", "delivery_timeout"}, {"delivery.timeout.ms", "delivery_timeout"},
};

int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

void delivery_trampoline(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  static_cast<KafkaSink*>(opaque)->on_delivery(*message);
}

void log_trampoline(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  if (void* opaque = rd_kafka_opaque(rk))
    static_cast<KafkaSink*>(opaque)->on_log(level, facility, text);
}

void error_trampoline(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<KafkaSink*>(opaque)->on_error(err, reason);
}

}  // namespace

KafkaSink::KafkaSink(const Options& options, Diagnostics& diag)
    : encoding_(json::encoding_from(options.get_string("encoding"))),
      delivery_timeout_ms_(options.get_duration_ns("delivery_timeout", 30'000'000'000) / 1'000'000),
      metadata_timeout_ms_(options.get_duration_ns("metadata_timeout", 10'000'000'000) /
                           1'000'000) {
  brokers_ = kafka::bootstrap_servers(options, diag);

  std::string error;
  if (!topic_.parse(options.get_string("topic"), error)) {
    diag.error("topic", error);
  } else if (topic_.literal() ? !kafka::topic_name_ok(topic_.text())
                              : !kafka::topic_chars_ok(topic_.literal_parts())) {
    diag.error("topic", fmt::format("'{}' is not a valid Kafka topic name: at most {} of the "
                                    "characters a-z A-Z 0-9 . _ -",
                                    topic_.text(), kafka::kMaxTopicLength));
  }
  if (options.has("key")) {
    has_key_ = true;
    if (!key_.parse(options.get_string("key"), error)) diag.error("key", error);
  }

  const OptionValue& create = options.get_object("create_topic");
  if (create.has("partitions")) {
    create_partitions_ = static_cast<int>(create.get_int("partitions"));
    create_replication_ = static_cast<int>(create.get_int("replication_factor", -1));
    if (!topic_.literal())
      diag.error("create_topic",
                 "needs a literal topic, not the template '" + options.get_string("topic") + "'");
  }

  // Our settings first, so that the configured properties are checked against them.
  properties_ = kafka::checked_properties(
      {
          {"bootstrap.servers", brokers_},
          {"client.id", "ingestd"},
          {"compression.codec", options.get_string("compression", "lz4")},
          {"message.timeout.ms", std::to_string(delivery_timeout_ms_)},
          {"acks", "all"},
          {"enable.idempotence", "true"},
      },
      options, kOwnedProperties,
      [](std::string_view name, std::string_view value) -> std::string {
        if ((name == "acks" || name == "request.required.acks") && value != "all" && value != "-1")
          return fmt::format(
              "'{}' must stay 'all': a batch counts as delivered only when "
              "every in-sync replica has it",
              name);
        if (name == "transactional.id")
          return "transactions are not supported; the sink is idempotent, at-least-once";
        return {};
      },
      diag);
}

KafkaSink::~KafkaSink() {
  // The context may go before the sink: librdkafka's last log lines are not passed on.
  log_.attach(nullptr);
  destroy_producer();
}

bool KafkaSink::start(Context& ctx) {
  log_.attach(&ctx);
  delivered_ = &ctx.counter("delivered");
  delivery_failed_ = &ctx.counter("delivery_failed");
  missing_field_ = &ctx.counter("missing_field");
  dead_lettered_ = &ctx.counter("dead_lettered");
  queue_full_waits_ = &ctx.counter("queue_full_waits");

  // librdkafka's queue holds at most about two batches: a write waits for its whole batch, so
  // more would only hide an outage from the core.
  const BatchLimits limits = ctx.batch_limits();
  auto configured = [&](std::string_view name) { return kafka::has_property(properties_, name); };
  if (!configured("queue.buffering.max.messages"))
    properties_.emplace_back("queue.buffering.max.messages",
                             std::to_string(std::max<size_t>(2 * limits.max_events, 64)));
  if (!configured("queue.buffering.max.kbytes"))
    properties_.emplace_back(
        "queue.buffering.max.kbytes",
        std::to_string(std::max<size_t>((4 * limits.max_bytes + (1 << 20)) / 1024, 1024)));
  // The core's breaker paces the probes after an outage; librdkafka's own reconnect backoff
  // (10 s at most by default) would hold the first delivery back for that long again.
  if (!configured("reconnect.backoff.max.ms"))
    properties_.emplace_back("reconnect.backoff.max.ms", "1000");

  std::string error;
  if (!create_producer(error)) {
    ctx.logf(LogLevel::kError, "cannot create the Kafka producer: {}", error);
    return false;
  }
  // The topic's handle only after the check: its metadata request would have the brokers
  // auto-create a missing topic (librdkafka's producers allow that by default).
  if (topic_.literal() && (!check_topic(ctx) || topic_index(topic_.text(), error) < 0)) {
    if (!error.empty()) ctx.log(LogLevel::kError, error);
    return false;
  }
  ctx.logf(LogLevel::kInfo, "producing to topic {} at {}", topic_.text(), brokers_);
  return true;
}

bool KafkaSink::create_producer(std::string& error) {
  ConfPtr conf(kafka::new_conf(properties_, error));
  if (!conf) return false;
  char errstr[512];
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &delivery_trampoline);
  rd_kafka_conf_set_log_cb(conf.get(), &log_trampoline);
  rd_kafka_conf_set_error_cb(conf.get(), &error_trampoline);
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr);
  if (rk_ == nullptr) {
    error = errstr;
    return false;
  }
  conf.release();  // rd_kafka_new() took it
  topics_.clear();
  topic_ids_.clear();
  return true;
}

void KafkaSink::destroy_producer() {
  if (rk_ == nullptr) return;
  // write() returns only when no message of its batch is left, so nothing is lost here.
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_, 0);
  for (Topic& t : topics_) rd_kafka_topic_destroy(t.handle);
  topics_.clear();
  topic_ids_.clear();
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
}

bool KafkaSink::check_topic(Context& ctx) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(metadata_timeout_ms_));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ctx.logf(LogLevel::kWarn,
             "cannot list the topics of {} within {} ms: {}; starting anyway, topic {} is not "
             "checked and writes fail (and are retried) until the brokers answer",
             brokers_, metadata_timeout_ms_, kafka::err_text(err), topic_.text());
    return true;
  }
  int partitions = -1;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic_.text() == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
      partitions = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (partitions >= 0) {
    ctx.logf(LogLevel::kDebug, "topic {} has {} partitions", topic_.text(), partitions);
    return true;
  }
  if (create_partitions_ > 0) return create_topic(ctx, brokers_);
  ctx.logf(LogLevel::kError,
           "topic {} does not exist at {}: create it, or let the sink create it with "
           "create_topic: {{partitions: N}}",
           topic_.text(), brokers_);
  return false;
}

bool KafkaSink::create_topic(Context& ctx, std::string_view brokers) {
  char errstr[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(topic_.text().c_str(), create_partitions_,
                                                     create_replication_, errstr, sizeof errstr);
  if (topic == nullptr) {
    ctx.logf(LogLevel::kError, "cannot create topic {}: {}", topic_.text(), errstr);
    return false;
  }
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  const int timeout = static_cast<int>(metadata_timeout_ms_);
  rd_kafka_AdminOptions_set_request_timeout(options, timeout, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_operation_timeout(options, timeout, errstr, sizeof errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_);
  rd_kafka_CreateTopics(rk_, &topic, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout + 1000);

  std::string error;
  if (event == nullptr) {
    error = fmt::format("no answer within {} ms", timeout);
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = fmt::format("{} ({})", rd_kafka_event_error_string(event),
                        rd_kafka_err2name(rd_kafka_event_error(event)));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    rd_kafka_resp_err_t err =
        count == 1 ? rd_kafka_topic_result_error(results[0]) : RD_KAFKA_RESP_ERR__FAIL;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* text = count == 1 ? rd_kafka_topic_result_error_string(results[0]) : nullptr;
      error = fmt::format("{} ({})", text ? text : rd_kafka_err2str(err), rd_kafka_err2name(err));
    }
  }
  if (event) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy(topic);
  if (!error.empty()) {
    ctx.logf(LogLevel::kError, "cannot create topic {} ({} partitions) at {}: {}", topic_.text(),
             create_partitions_, brokers, error);
    return false;
  }
  ctx.logf(LogLevel::kInfo, "created topic {} with {} partitions", topic_.text(),
           create_partitions_);
  return true;
}

int32_t KafkaSink::topic_index(std::string_view name, std::string& error) {
  if (auto it = topic_ids_.find(name); it != topic_ids_.end()) return it->second;
  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk_, std::string(name).c_str(), nullptr);
  if (handle == nullptr) {
    error = fmt::format("cannot use topic {}: {}", name, kafka::err_text(rd_kafka_last_error()));
    return -1;
  }
  const auto id = static_cast<int32_t>(topics_.size());
  topics_.push_back(Topic{std::string(name), handle});
  topic_ids_.emplace(std::string(name), id);
  return id;
}

SinkResult KafkaSink::write(Context& ctx, const Batch& batch) {
  if (rk_ == nullptr) {
    std::string error;
    if (!create_producer(error))
      return SinkResult::retryable("cannot create the Kafka producer: " + error);
    ctx.log(LogLevel::kInfo, "created a new Kafka producer");
  }
  if (topic_.literal() && topics_.empty()) {
    std::string error;
    if (topic_index(topic_.text(), error) < 0) return SinkResult::retryable(error);
  }
  render(batch);
  produce_all();
  await_reports();
  return outcome(ctx, batch);
}

void KafkaSink::render(const Batch& batch) {
  messages_.clear();
  payloads_.clear();
  keys_.clear();
  messages_.reserve(batch.size());
  std::string error;
  const auto events = batch.events();
  for (uint32_t i = 0; i < events.size(); ++i) {
    const Event& event = events[i];
    Message& m = messages_.emplace_back();
    m.event = i;
    m.topic = 0;
    m.err = kPending;
    if (!topic_.literal()) {
      scratch_.clear();
      if (!topic_.render(batch, event, scratch_, m.missing)) {
        m.err = kMissing;
        m.missing_in_key = false;
        continue;
      }
      if (!kafka::topic_name_ok(scratch_)) {
        m.err = RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
        continue;
      }
      m.topic = topic_index(scratch_, error);
      if (m.topic < 0) {
        m.err = RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
        continue;
      }
    }
    m.key_offset = keys_.size();
    if (has_key_ && !key_.render(batch, event, keys_, m.missing)) {
      m.err = kMissing;
      m.missing_in_key = true;
      keys_.resize(m.key_offset);
      continue;
    }
    m.key_size = keys_.size() - m.key_offset;
    const bool raw = encoding_ == json::Encoding::kRaw ||
                     (encoding_ == json::Encoding::kAuto && !event.raw.empty());
    if (raw) {
      m.payload = event.raw.data();
      m.payload_size = event.raw.size();
    } else {
      // Offsets for now: payloads_ may still grow. Turned into pointers below.
      m.payload_offset = payloads_.size();
      json::append_fields(payloads_, batch, event);
      m.payload_size = payloads_.size() - m.payload_offset;
      m.offset_payload = true;
    }
  }
  for (Message& m : messages_)
    if (m.offset_payload) m.payload = payloads_.data() + m.payload_offset;
}

void KafkaSink::produce_all() {
  static char kEmpty[1] = "";
  outstanding_ = 0;
  const int64_t deadline = monotonic_ns() + delivery_timeout_ms_ * 1'000'000;
  for (Message& m : messages_) {
    if (m.err != kPending) continue;
    // No copy: the payloads live in the batch or in payloads_, both untouched until write()
    // returns, and write() returns only after the message's delivery report.
    void* payload = m.payload_size != 0 ? const_cast<char*>(m.payload) : kEmpty;
    const char* key = has_key_ ? keys_.data() + m.key_offset : nullptr;
    for (;;) {
      if (rd_kafka_produce(topics_[static_cast<size_t>(m.topic)].handle, RD_KAFKA_PARTITION_UA, 0,
                           payload, m.payload_size, key, m.key_size, &m) == 0) {
        ++outstanding_;
        break;
      }
      rd_kafka_resp_err_t err = rd_kafka_last_error();
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && monotonic_ns() < deadline) {
        // The queue drains as the brokers answer: serve delivery reports, then try again.
        queue_full_waits_->add();
        rd_kafka_poll(rk_, 10);
        continue;
      }
      m.err = err;
      break;
    }
  }
}

void KafkaSink::await_reports() {
  const int64_t started = monotonic_ns();
  // librdkafka reports every message within message.timeout.ms; purging after a grace period
  // guards against a report that never comes, since the payloads must not be released before.
  const int64_t purge_after = (delivery_timeout_ms_ + 30'000) * 1'000'000;
  bool purged = false;
  while (outstanding_ > 0) {
    rd_kafka_flush(rk_, 100);
    if (!purged && outstanding_ > 0 && monotonic_ns() - started > purge_after) {
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      purged = true;
    }
  }
}

void KafkaSink::on_delivery(const rd_kafka_message_t& message) {
  auto* m = static_cast<Message*>(message._private);
  if (m == nullptr) return;
  m->err = message.err;
  --outstanding_;
}

bool KafkaSink::permanent(int err) const {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
      return true;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      // A template rendered a topic that does not exist: that event's fault. A literal topic
      // that disappears is an outage the operator fixes.
      return !topic_.literal();
    default:
      return false;
  }
}

SinkResult KafkaSink::outcome(Context& ctx, const Batch& batch) {
  size_t delivered = 0, failed = 0;
  int first_err = 0;
  const Message* first = nullptr;
  for (const Message& m : messages_) {
    if (m.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++delivered;
    } else if (m.err != kMissing && !permanent(m.err)) {
      if (failed++ == 0) {
        first_err = m.err;
        first = &m;
      }
    }
  }
  delivered_->add(delivered);
  if (failed > 0) {
    delivery_failed_->add(failed);
    std::string text = fmt::format(
        "{} of {} messages not delivered to {} (first: {}); the {} acknowledged will be sent "
        "again with the batch",
        failed, messages_.size(), topics_[static_cast<size_t>(first->topic)].name,
        kafka::err_text(first_err), delivered);
    char fatal[512];
    if (rd_kafka_fatal_error(rk_, fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ctx.logf(LogLevel::kError, "fatal producer error: {}; replacing the producer", fatal);
      destroy_producer();
    }
    return SinkResult::retryable(std::move(text));
  }
  const auto events = batch.events();
  for (const Message& m : messages_) {
    if (m.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    std::string reason;
    if (m.err == kMissing) {
      missing_field_->add();
      reason = fmt::format("the event has no field '{}' for the {} template", m.missing,
                           m.missing_in_key ? "key" : "topic");
    } else {
      reason = fmt::format("Kafka refused the message: {}", kafka::err_text(m.err));
    }
    const Event& event = events[m.event];
    scratch_.clear();
    if (!event.raw.empty())
      scratch_ = event.raw;
    else
      json::append_fields(scratch_, batch, event);
    ctx.dead_letter(scratch_, reason);
    dead_lettered_->add();
  }
  return SinkResult::ok();
}

SinkResult KafkaSink::flush(Context&) {
  if (rk_ == nullptr) return SinkResult::ok();
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_, static_cast<int>(delivery_timeout_ms_));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return SinkResult::retryable("final flush: " + kafka::err_text(err));
  return SinkResult::ok();
}

void KafkaSink::on_log(int level, const char* facility, const char* text) {
  log_.librdkafka_log(level, facility, text);
}

void KafkaSink::on_error(int err, const char* reason) {
  log_.warn(fmt::format("Kafka error {}: {}",
                        rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason));
}

}  // namespace ingestd::plugins
