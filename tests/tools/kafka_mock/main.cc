// ingestd-test-kafka: a Kafka cluster for tests, librdkafka's mock cluster on 127.0.0.1.
//
//   ingestd-test-kafka [--brokers N] [--topic NAME:PARTITIONS]...
//
// Starts N brokers (default 1, ids 1..N) listening on free TCP ports, creates the topics, prints
// the bootstrap servers ("127.0.0.1:port,...") as its first line on stdout, then answers one
// line per command read from stdin:
//   down <id|all>    the broker drops its connections and refuses new ones   -> ok
//   up <id|all>      it accepts connections again                           -> ok
//   hwm <topic>      high watermarks per partition, "0:123 1:118 ..."       -> or "error: ..."
//   topics           "name:partitions ..." of every topic in the cluster
//   committed <group> <topic>  the group's committed offset per partition, "0:120 1:-1 ..."
//                    (-1: none committed)                                   -> or "error: ..."
//   quit             exits (so does the end of stdin)
// The mock keeps only the newest few MiB of each partition; the watermarks count everything.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace {

[[noreturn]] void die(const std::string& message) {
  std::cerr << "ingestd-test-kafka: " << message << "\n";
  std::exit(2);
}

rd_kafka_t* new_client(rd_kafka_type_t type, const char* bootstrap, const char* group = nullptr) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (bootstrap && rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) !=
                       RD_KAFKA_CONF_OK)
    die(errstr);
  if (group &&
      rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    die(errstr);
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  // The queries come after a test has taken the brokers down and up again: reconnect at once,
  // not after the backoff (up to 10 s by default) that the outage grew.
  rd_kafka_conf_set(conf, "reconnect.backoff.ms", "10", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "100", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) die(errstr);
  return rk;
}

// -1 (all) or a broker id.
bool broker_id(const std::string& arg, int32_t& id) {
  if (arg == "all") {
    id = -1;
    return true;
  }
  char* end = nullptr;
  long v = std::strtol(arg.c_str(), &end, 10);
  if (arg.empty() || *end != '\0' || v < 1) return false;
  id = static_cast<int32_t>(v);
  return true;
}

// The topic's partition count, or -1 with `error` set.
int partition_count(rd_kafka_t* client, const std::string& topic, std::string& error) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(client, 1, nullptr, &md, 5000);
  if (err) {
    error = fmt::format("error: metadata: {}", rd_kafka_err2str(err));
    return -1;
  }
  int partitions = -1;
  for (int i = 0; i < md->topic_cnt; ++i)
    if (topic == md->topics[i].topic) partitions = md->topics[i].partition_cnt;
  rd_kafka_metadata_destroy(md);
  if (partitions < 0) error = fmt::format("error: no topic {}", topic);
  return partitions;
}

std::string watermarks(rd_kafka_t* client, const std::string& topic) {
  std::string error;
  const int partitions = partition_count(client, topic, error);
  if (partitions < 0) return error;
  rd_kafka_resp_err_t err;
  std::string out;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    err = rd_kafka_query_watermark_offsets(client, topic.c_str(), p, &low, &high, 5000);
    if (err) return fmt::format("error: partition {}: {}", p, rd_kafka_err2str(err));
    out += fmt::format("{}{}:{}", out.empty() ? "" : " ", p, high);
  }
  return out;
}

// Asks the group coordinator (OffsetFetch) without joining the group.
std::string committed(const std::string& bootstrap, const std::string& arg) {
  const size_t space = arg.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 == arg.size())
    return "error: usage: committed <group> <topic>";
  const std::string group = arg.substr(0, space), topic = arg.substr(space + 1);
  rd_kafka_t* client = new_client(RD_KAFKA_CONSUMER, bootstrap.c_str(), group.c_str());
  std::string out;
  const int partitions = partition_count(client, topic, out);
  if (partitions >= 0) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int32_t p = 0; p < partitions; ++p)
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    rd_kafka_resp_err_t err = rd_kafka_committed(client, list, 5000);
    if (err) out = fmt::format("error: committed: {}", rd_kafka_err2str(err));
    for (int i = 0; !err && i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = list->elems[i];
      if (p.err) {
        out = fmt::format("error: partition {}: {}", p.partition, rd_kafka_err2str(p.err));
        break;
      }
      out +=
          fmt::format("{}{}:{}", out.empty() ? "" : " ", p.partition, p.offset < 0 ? -1 : p.offset);
    }
    rd_kafka_topic_partition_list_destroy(list);
  }
  rd_kafka_destroy(client);
  return out;
}

std::string topics(rd_kafka_t* client) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(client, 1, nullptr, &md, 5000);
  if (err) return fmt::format("error: metadata: {}", rd_kafka_err2str(err));
  std::string out;
  for (int i = 0; i < md->topic_cnt; ++i)
    out += fmt::format("{}{}:{}", out.empty() ? "" : " ", md->topics[i].topic,
                       md->topics[i].partition_cnt);
  rd_kafka_metadata_destroy(md);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  std::vector<std::pair<std::string, int>> wanted;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--brokers" || arg == "--topic") && i + 1 >= argc) die(arg + " needs a value");
    if (arg == "--brokers") {
      brokers = std::atoi(argv[++i]);
      if (brokers < 1) die("--brokers must be at least 1");
    } else if (arg == "--topic") {
      std::string spec = argv[++i];
      size_t colon = spec.rfind(':');
      int partitions = colon == std::string::npos ? 1 : std::atoi(spec.c_str() + colon + 1);
      if (colon == 0 || partitions < 1) die("--topic takes NAME:PARTITIONS, got " + spec);
      wanted.emplace_back(spec.substr(0, colon), partitions);
    } else {
      die("unknown argument " + arg +
          "; usage: ingestd-test-kafka [--brokers N] [--topic NAME:PARTITIONS]...");
    }
  }

  rd_kafka_t* host = new_client(RD_KAFKA_PRODUCER, nullptr);
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host, brokers);
  if (!cluster) die("cannot create the mock cluster");
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  for (const auto& [name, partitions] : wanted) {
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, std::min(brokers, 3));
    if (err) die(fmt::format("cannot create topic {}: {}", name, rd_kafka_err2str(err)));
  }
  rd_kafka_t* client = new_client(RD_KAFKA_CONSUMER, bootstrap.c_str());

  std::cout << bootstrap << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::string command = line.substr(0, line.find(' '));
    std::string arg = line.size() > command.size() ? line.substr(command.size() + 1) : "";
    std::string answer;
    int32_t id = 0;
    if (command == "quit") {
      break;
    } else if ((command == "down" || command == "up") && broker_id(arg, id)) {
      rd_kafka_resp_err_t err = command == "down" ? rd_kafka_mock_broker_set_down(cluster, id)
                                                  : rd_kafka_mock_broker_set_up(cluster, id);
      answer = err ? fmt::format("error: {}", rd_kafka_err2str(err)) : "ok";
    } else if (command == "hwm" && !arg.empty()) {
      answer = watermarks(client, arg);
    } else if (command == "committed") {
      answer = committed(bootstrap, arg);
    } else if (command == "topics") {
      answer = topics(client);
    } else {
      answer =
          "error: unknown command; use down|up <id|all>, hwm <topic>, topics, "
          "committed <group> <topic>, quit";
    }
    std::cout << answer << std::endl;
  }
  rd_kafka_destroy(client);
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(host);
  return 0;
}
