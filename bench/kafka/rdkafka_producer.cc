// bench_rdkafka_producer: librdkafka's own producer at full speed, the yardstick of the Kafka
// sink benchmark (bench/kafka/run.py).
//
//   bench_rdkafka_producer BOOTSTRAP TOPIC COUNT [PROPERTY=VALUE]...
//
// Produces COUNT messages shaped like the benchmark generator's events (about 90 bytes of JSON
// with a sequence number), asynchronously with RD_KAFKA_MSG_F_COPY from one reused buffer,
// serving delivery reports as it goes, then flushes. The properties are the ones the sink runs
// with (acks, idempotence, compression, linger); the queue keeps librdkafka's defaults, which is
// how an application producing on its own would run. Prints one JSON line: messages, failed,
// seconds (first produce to the last delivery report).
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "rdkafka_conf.h"

namespace {

uint64_t failed = 0;

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err) ++failed;
}

// xorshift64: the choices vary like the generator's, without its exact sequence.
uint64_t next(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_rdkafka_producer BOOTSTRAP TOPIC COUNT [PROP=VALUE]...\n");
    return 2;
  }
  const char* topic_name = argv[2];
  const long long count = std::atoll(argv[3]);
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  bench::conf_set(conf, "bootstrap.servers", argv[1]);
  bench::conf_set_args(conf, 4, argc, argv);
  rd_kafka_conf_set_dr_msg_cb(conf, &on_delivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "%s\n", errstr);
    return 2;
  }
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, topic_name, nullptr);

  static const char* kDevices[] = {"xbox_one", "ps4", "roku", "apple_tv"};
  static const char* kTitles[] = {"narcos", "dark", "ozark", "mindhunter"};
  static const char* kCountries[] = {"UK", "US", "BR", "DE"};
  uint64_t state = 88172645463325252ull;
  char buf[256];
  const auto started = std::chrono::steady_clock::now();
  for (long long seq = 0; seq < count; ++seq) {
    const int n = std::snprintf(
        buf, sizeof buf,
        R"({"seq":%lld,"device":"%s","sev":"%s","title":"%s","country":"%s","n":%llu})", seq,
        kDevices[next(state) % 4], next(state) % 4 ? "success" : "error", kTitles[next(state) % 4],
        kCountries[next(state) % 4], static_cast<unsigned long long>(next(state) % 100000));
    while (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf,
                            static_cast<size_t>(n), nullptr, 0, nullptr) != 0) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        return 1;
      }
      rd_kafka_poll(rk, 10);
    }
    if (seq % 1000 == 0) rd_kafka_poll(rk, 0);
  }
  while (rd_kafka_outq_len(rk) > 0) rd_kafka_flush(rk, 1000);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s\n", fmt::format(R"({{"messages":{},"failed":{},"seconds":{:.6f}}})", count,
                                  failed, seconds)
                          .c_str());
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(rk);
  return failed == 0 ? 0 : 1;
}
