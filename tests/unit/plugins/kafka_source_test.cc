#include "source/kafka/kafka_source.h"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;

constexpr ComponentDescriptor kDescriptor =
    describe<KafkaSource>(Kind::kSource, "kafka", kKafkaSourceDoc, kKafkaSourceOptions);

// The factory's errors for `yaml`, as "option: message".
std::vector<std::string> factory_errors(const std::string& yaml) {
  CollectingDiagnostics diag;
  KafkaSource source(ingestd::testing::options_or_fail(kDescriptor, yaml), diag);
  std::vector<std::string> out;
  for (const auto& [option, message] : diag.errors) out.push_back(option + ": " + message);
  return out;
}

std::string joined(const std::vector<std::string>& errors) {
  return fmt::format("{}", fmt::join(errors, "\n"));
}

TEST(KafkaSourceOptions, GoodOptionsPass) {
  EXPECT_EQ(factory_errors("{brokers: 'a:9092, b:9092', group: g, topics: [events, logs], "
                           "start: latest, commit_interval: 500ms, librdkafka: "
                           "{session.timeout.ms: '10000', fetch.max.bytes: '1048576', "
                           "enable.auto.commit: 'false'}}"),
            std::vector<std::string>{});
  EXPECT_EQ(factory_errors("{brokers: [a:1], group: g, topic_pattern: 'logs-.*'}"),
            std::vector<std::string>{});
  EXPECT_EQ(factory_errors("{brokers: a:1, group: g, topics: t, librdkafka: "
                           "{partition.assignment.strategy: roundrobin}}"),
            std::vector<std::string>{});
}

TEST(KafkaSourceOptions, ExactlyOneOfTopicsAndPattern) {
  EXPECT_EQ(factory_errors("{brokers: a:1, group: g}"),
            std::vector<std::string>{": needs `topics` (a list of topic names) or `topic_pattern` "
                                     "(a regular expression)"});
  EXPECT_EQ(
      factory_errors("{brokers: a:1, group: g, topics: [t], topic_pattern: 't.*'}"),
      std::vector<std::string>{"topic_pattern: set either `topics` or `topic_pattern`, not both"});
}

TEST(KafkaSourceOptions, TopicsPatternGroupAndBrokersAreChecked) {
  auto errors = factory_errors("{brokers: ' , ', group: '', topics: ['bad topic']}");
  ASSERT_EQ(errors.size(), 3u) << joined(errors);
  EXPECT_EQ(errors[0], "brokers: needs at least one host:port");
  EXPECT_EQ(errors[1], "group: must not be empty");
  EXPECT_EQ(errors[2].rfind("topics: 'bad topic' is not a valid Kafka topic name", 0), 0u)
      << errors[2];
  errors = factory_errors("{brokers: a:1, group: g, topic_pattern: 'logs-(x'}");
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_EQ(errors[0].rfind("topic_pattern: 'logs-(x' is not a valid regular expression", 0), 0u)
      << errors[0];
}

TEST(KafkaSourceOptions, LibrdkafkaPropertiesAreNamedAtTheirOption) {
  auto errors = factory_errors(
      "{brokers: a:1, group: g, topics: t, librdkafka: {fetch.max.bytez: '5', "
      "session.timeout.ms: soon, group.id: other, enable.auto.commit: 'true', "
      "enable.auto.offset.store: 'true', auto.offset.reset: latest}}");
  ASSERT_EQ(errors.size(), 6u) << joined(errors);
  EXPECT_EQ(errors[0].rfind("librdkafka.fetch.max.bytez: unknown librdkafka property "
                            "'fetch.max.bytez'",
                            0),
            0u)
      << errors[0];
  EXPECT_EQ(errors[1].rfind("librdkafka.session.timeout.ms: invalid value 'soon'", 0), 0u)
      << errors[1];
  EXPECT_EQ(errors[2],
            "librdkafka.group.id: 'group.id' is set by the option `group`; use that instead");
  EXPECT_EQ(errors[3].rfind("librdkafka.enable.auto.commit: 'enable.auto.commit' must stay "
                            "false",
                            0),
            0u)
      << errors[3];
  EXPECT_EQ(errors[4].rfind("librdkafka.enable.auto.offset.store: ", 0), 0u) << errors[4];
  EXPECT_EQ(errors[5],
            "librdkafka.auto.offset.reset: 'auto.offset.reset' is set by the option `start`; use "
            "that instead");
}

TEST(KafkaSourceOptions, RebalanceTimeoutStaysBelowMaxPollInterval) {
  auto errors = factory_errors(
      "{brokers: a:1, group: g, topics: t, rebalance_timeout: 20s, "
      "librdkafka: {max.poll.interval.ms: '15000'}}");
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_EQ(errors[0].rfind("rebalance_timeout: must stay below librdkafka's "
                            "max.poll.interval.ms (15000 ms)",
                            0),
            0u)
      << errors[0];
}

TEST(KafkaSourceOptions, SchemaErrorsHavePositions) {
  std::vector<config::Error> errors;
  config::options_from_yaml(kDescriptor,
                            "brokers: a:1\ngroup: g\ntopics: [t]\nstart: newest\n"
                            "commit_interval: 1ms\n",
                            errors, "src.yaml");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].to_string().rfind("src.yaml:4:8: ", 0), 0u) << errors[0].to_string();
  EXPECT_NE(errors[0].to_string().find("expected one of earliest, latest, got 'newest'"),
            std::string::npos)
      << errors[0].to_string();
  EXPECT_EQ(errors[1].to_string().rfind("src.yaml:5:18: ", 0), 0u) << errors[1].to_string();
}

}  // namespace
}  // namespace ingestd::plugins
