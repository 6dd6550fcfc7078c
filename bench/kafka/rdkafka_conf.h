// The client configuration of the benchmarks' librdkafka programs (bench_rdkafka_producer,
// bench_rdkafka_consumer): properties set one by one, a bad one ending the program with exit
// status 2 and librdkafka's message, and the PROPERTY=VALUE arguments of their command lines.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace bench {

inline void conf_set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "%s=%s: %s\n", name.c_str(), value.c_str(), errstr);
    std::exit(2);
  }
}

// Sets argv[first..argc) as PROPERTY=VALUE pairs.
inline void conf_set_args(rd_kafka_conf_t* conf, int first, int argc, char** argv) {
  for (int i = first; i < argc; ++i) {
    const std::string kv = argv[i];
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "expected PROPERTY=VALUE, got %s\n", argv[i]);
      std::exit(2);
    }
    conf_set(conf, kv.substr(0, eq), kv.substr(eq + 1));
  }
}

}  // namespace bench
