#include "sink/kafka/kafka_sink.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "kafka_mock_cluster.h"
#include "plugin_test_support.h"
#include "sink/kafka/field_template.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;
using ingestd::testing::MockCluster;

constexpr ComponentDescriptor kDescriptor =
    describe<KafkaSink>(Kind::kSink, "kafka", kKafkaSinkDoc, kKafkaSinkOptions);

Options parse_options(const std::string& yaml) {
  return ingestd::testing::options_or_fail(kDescriptor, yaml);
}

// The factory's errors for `yaml`, as "option: message".
std::vector<std::string> factory_errors(const std::string& yaml) {
  CollectingDiagnostics diag;
  KafkaSink sink(parse_options(yaml), diag);
  std::vector<std::string> out;
  for (const auto& [option, message] : diag.errors) out.push_back(option + ": " + message);
  return out;
}

TEST(KafkaSinkOptions, GoodOptionsPass) {
  EXPECT_EQ(factory_errors("{brokers: 'a:9092, b:9092', topic: events, key: '{user}', "
                           "compression: zstd, librdkafka: {linger.ms: '20', "
                           "security.protocol: plaintext, acks: all}}"),
            std::vector<std::string>{});
  EXPECT_EQ(factory_errors("{brokers: [a:1, b:2], topic: 'logs-{service}'}"),
            std::vector<std::string>{});
}

TEST(KafkaSinkOptions, UnknownAndInvalidPropertiesAreNamedAtTheirOption) {
  auto errors = factory_errors(
      "{brokers: a:1, topic: t, librdkafka: {linger.msec: '5', linger.ms: soon, "
      "compression.codec: gzip, acks: '1', transactional.id: x}}");
  ASSERT_EQ(errors.size(), 5u) << fmt::format("{}", fmt::join(errors, "\n"));
  EXPECT_EQ(errors[0].rfind("librdkafka.linger.msec: unknown librdkafka property 'linger.msec'", 0),
            0u)
      << errors[0];
  EXPECT_EQ(errors[1].rfind("librdkafka.linger.ms: invalid value 'soon'", 0), 0u) << errors[1];
  EXPECT_EQ(errors[2],
            "librdkafka.compression.codec: 'compression.codec' is set by the option "
            "`compression`; use that instead");
  EXPECT_EQ(errors[3].rfind("librdkafka.acks: 'acks' must stay 'all'", 0), 0u) << errors[3];
  EXPECT_EQ(errors[4].rfind("librdkafka.transactional.id:", 0), 0u) << errors[4];
}

TEST(KafkaSinkOptions, BadCompressionIsASchemaError) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor,
                                           "{brokers: a:1, topic: t, compression: "
                                           "brotli}",
                                           errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].to_string().find("compression: expected one of none, gzip, snappy, lz4, "
                                       "zstd, got 'brotli'"),
            std::string::npos)
      << errors[0].to_string();
}

TEST(KafkaSinkOptions, TopicKeyAndBrokersAreChecked) {
  EXPECT_EQ(factory_errors("{brokers: ' , ', topic: t}"),
            std::vector<std::string>{"brokers: needs at least one host:port"});
  auto errors = factory_errors("{brokers: a:1, topic: 'bad topic'}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("topic: 'bad topic' is not a valid Kafka topic name", 0), 0u);
  errors = factory_errors("{brokers: a:1, topic: 'logs-{service'}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "topic: the placeholder at offset 5 is not closed with '}'");
  errors = factory_errors("{brokers: a:1, topic: 'logs-{x}', create_topic: {partitions: 2}}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("create_topic: needs a literal topic", 0), 0u) << errors[0];
  errors = factory_errors("{brokers: a:1, topic: t, key: '{}'}");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "key: the placeholder at offset 0 needs a field name, as in {service}");
}

TEST(FieldTemplate, ParsesPlaceholdersAndEscapes) {
  std::string error;
  FieldTemplate t;
  ASSERT_TRUE(t.parse("logs", error));
  EXPECT_TRUE(t.literal());
  EXPECT_EQ(t.text(), "logs");
  ASSERT_TRUE(t.parse("a{{b}}", error));
  EXPECT_TRUE(t.literal());
  EXPECT_EQ(t.text(), "a{b}");

  ASSERT_TRUE(t.parse("logs-{service}.{n}{{x}}", error)) << error;
  EXPECT_FALSE(t.literal());
  EXPECT_EQ(t.literal_parts(), "logs-.{x}");
  Batch batch;
  Event& e = batch.add("raw", 0);
  batch.append_field(e, "service", Value::string("api"));
  batch.append_field(e, "n", Value::integer(7));
  Event& lacking = batch.add("raw", 0);
  batch.append_field(lacking, "service", Value::string("db"));
  batch.append_field(lacking, "n", Value::null());
  std::string out;
  std::string_view missing;
  ASSERT_TRUE(t.render(batch, batch.events()[0], out, missing));
  EXPECT_EQ(out, "logs-api.7{x}");
  out.clear();
  EXPECT_FALSE(t.render(batch, batch.events()[1], out, missing));
  EXPECT_EQ(missing, "n");

  EXPECT_FALSE(t.parse("a}b", error));
  EXPECT_FALSE(t.parse("{a", error));
  EXPECT_FALSE(t.parse("{}", error));
}

struct Producing {
  FakeContext ctx{"kafka"};
  std::unique_ptr<KafkaSink> sink;

  bool open(const std::string& yaml) {
    CollectingDiagnostics diag;
    sink = std::make_unique<KafkaSink>(parse_options(yaml), diag);
    EXPECT_TRUE(diag.errors.empty()) << diag.errors[0].second;
    return sink->start(ctx);
  }
  std::string log_text() {
    std::string text;
    for (const auto& [level, line] : ctx.logs) text += line + "\n";
    return text;
  }
};

BatchPtr user_batch(int from, int n) {
  auto batch = std::make_unique<Batch>();
  for (int i = from; i < from + n; ++i) {
    std::string raw = fmt::format(R"({{"seq":{},"user":"u{}"}})", i, i % 5);
    Event& e = batch->add(batch->copy(raw), 0);
    batch->append_field(e, "seq", Value::integer(i));
    batch->append_field(e, "user", Value::string(batch->copy(fmt::format("u{}", i % 5))));
  }
  return batch;
}

TEST(KafkaSink, DeliversEveryEventWithItsKeyToOnePartitionPerKey) {
  MockCluster cluster;
  cluster.create("events", 4);
  Producing p;
  ASSERT_TRUE(
      p.open(fmt::format("{{brokers: '{}', topic: events, key: '{{user}}'}}", cluster.bootstrap())))
      << p.log_text();
  for (int b = 0; b < 3; ++b) {
    SinkResult r = p.sink->write(p.ctx, *user_batch(b * 100, 100));
    ASSERT_EQ(r.status, SinkStatus::kOk) << r.error;
  }
  EXPECT_EQ(p.sink->flush(p.ctx).status, SinkStatus::kOk);
  EXPECT_EQ(p.ctx.count("delivered"), 300u);

  auto messages = cluster.read("events", 4);
  ASSERT_EQ(messages.size(), 300u);
  std::map<std::string, int> partition_of;
  std::set<std::string> values;
  for (const auto& [partition, key, value] : messages) {
    auto [it, fresh] = partition_of.emplace(key, partition);
    EXPECT_EQ(it->second, partition) << "key " << key;
    values.insert(value);
  }
  EXPECT_EQ(partition_of.size(), 5u);
  EXPECT_EQ(values.size(), 300u);
  EXPECT_TRUE(values.count(R"({"seq":42,"user":"u2"})"));
}

TEST(KafkaSink, MissingTemplateFieldsAreDeadLetteredAndTheRestWritten) {
  MockCluster cluster;
  cluster.create("logs-api", 1);
  cluster.create("logs-db", 1);
  Producing p;
  ASSERT_TRUE(p.open(fmt::format("{{brokers: '{}', topic: 'logs-{{service}}', encoding: json}}",
                                 cluster.bootstrap())));
  Batch batch;
  for (const char* service : std::vector<const char*>{"api", "db", nullptr, "api"}) {
    Event& e = batch.add(service ? "" : "orphan", 0);
    if (service) batch.append_field(e, "service", Value::string(service));
  }
  SinkResult r = p.sink->write(p.ctx, batch);
  ASSERT_EQ(r.status, SinkStatus::kOk) << r.error;
  EXPECT_EQ(p.ctx.count("delivered"), 3u);
  EXPECT_EQ(p.ctx.count("missing_field"), 1u);
  ASSERT_EQ(p.ctx.dead_letters.size(), 1u);
  EXPECT_EQ(p.ctx.dead_letters[0].first, "orphan");
  EXPECT_EQ(p.ctx.dead_letters[0].second,
            "the event has no field 'service' for the topic template");
  auto api = cluster.read("logs-api", 1);
  ASSERT_EQ(api.size(), 2u);
  EXPECT_EQ(std::get<2>(api[0]), R"({"service":"api"})");
  EXPECT_EQ(cluster.read("logs-db", 1).size(), 1u);
}

TEST(KafkaSink, MissingLiteralTopicFailsStartNamingTopicAndBrokers) {
  MockCluster cluster;
  cluster.create("other", 1);
  Producing p;
  EXPECT_FALSE(p.open(fmt::format("{{brokers: '{}', topic: nosuch}}", cluster.bootstrap())));
  EXPECT_NE(
      p.log_text().find(fmt::format("topic nosuch does not exist at {}", cluster.bootstrap())),
      std::string::npos)
      << p.log_text();
}

TEST(KafkaSink, UnreachableBrokersOnlyWarnAtStartAndFailWritesAsRetryable) {
  Producing p;
  // A port nothing listens on (the discard port, closed on test machines).
  ASSERT_TRUE(
      p.open("{brokers: '127.0.0.1:9', topic: t, metadata_timeout: 300ms, "
             "delivery_timeout: 300ms}"));
  EXPECT_NE(p.log_text().find("starting anyway"), std::string::npos) << p.log_text();
  SinkResult r = p.sink->write(p.ctx, *user_batch(0, 3));
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_NE(r.error.find("3 of 3 messages not delivered to t"), std::string::npos) << r.error;
  EXPECT_EQ(p.ctx.count("delivery_failed"), 3u);
  EXPECT_TRUE(p.ctx.dead_letters.empty());
}

}  // namespace
}  // namespace ingestd::plugins
