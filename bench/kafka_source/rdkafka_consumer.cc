// bench_rdkafka_consumer: librdkafka's own high-level consumer at full speed, the yardstick of
// the Kafka source benchmark (bench/kafka_source/run.py).
//
//   bench_rdkafka_consumer BOOTSTRAP TOPIC GROUP EXPECTED [PROPERTY=VALUE]...
//
// Joins GROUP (a fresh one: auto.offset.reset=earliest) subscribed to TOPIC and polls until it
// has seen EXPECTED messages, or until every assigned partition has reported its end (a topic
// holding fewer messages than expected: the mock cluster dropped some), or 60 s without a
// message. Each message's value is touched (its length summed), as an application would read it;
// nothing is committed (enable.auto.commit=false), so every run with a fresh group reads the
// same data. The properties are passed to librdkafka as they are. Prints one JSON line:
// messages, bytes, seconds (subscribe to the last message), first_seconds (subscribe to the first
// message: mostly the group join). Exit status 0 when it read exactly
// EXPECTED messages, 1 otherwise, 2 on a usage or configuration error.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "../kafka/rdkafka_conf.h"

namespace {

using Clock = std::chrono::steady_clock;

// Partitions at their end: a message after the end takes its partition off again.
using Partition = std::pair<std::string, int32_t>;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: bench_rdkafka_consumer BOOTSTRAP TOPIC GROUP EXPECTED [PROP=VALUE]...\n");
    return 2;
  }
  const char* topic = argv[2];
  const long long expected = std::atoll(argv[4]);
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  bench::conf_set(conf, "bootstrap.servers", argv[1]);
  bench::conf_set(conf, "group.id", argv[3]);
  bench::conf_set(conf, "auto.offset.reset", "earliest");
  bench::conf_set(conf, "enable.auto.commit", "false");
  bench::conf_set(conf, "enable.partition.eof", "true");
  bench::conf_set_args(conf, 5, argc, argv);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "%s\n", errstr);
    return 2;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
  const auto started = Clock::now();
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics)) {
    std::fprintf(stderr, "subscribe: %s\n", rd_kafka_err2str(err));
    return 2;
  }
  rd_kafka_topic_partition_list_destroy(topics);

  long long messages = 0, bytes = 0;
  std::set<Partition> at_end;
  auto last = Clock::now(), last_message = started, first_message = started;
  while (messages < expected && last - last_message < std::chrono::seconds(60)) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    last = Clock::now();
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.emplace(rd_kafka_topic_name(m->rkt), m->partition);
      rd_kafka_message_destroy(m);
      rd_kafka_topic_partition_list_t* assigned = nullptr;
      const bool all_at_end = !rd_kafka_assignment(rk, &assigned) && assigned->cnt > 0 &&
                              static_cast<size_t>(assigned->cnt) == at_end.size();
      if (assigned) rd_kafka_topic_partition_list_destroy(assigned);
      if (all_at_end) break;
      continue;
    }
    if (m->err) {
      std::fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
    } else {
      if (messages++ == 0) first_message = last;
      bytes += static_cast<long long>(m->len);
      last_message = last;
      at_end.erase({rd_kafka_topic_name(m->rkt), m->partition});
    }
    rd_kafka_message_destroy(m);
  }
  auto since_start = [&](Clock::time_point t) {
    return std::chrono::duration<double>(t - started).count();
  };
  std::printf("%s\n",
              fmt::format(R"({{"messages":{},"bytes":{},"seconds":{:.6f},"first_seconds":{:.6f}}})",
                          messages, bytes, since_start(last_message), since_start(first_message))
                  .c_str());
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return messages == expected ? 0 : 1;
}
