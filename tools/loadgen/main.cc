// ingestd-loadgen: loads an HTTP source (or any HTTP/1.1 endpoint that takes POSTed JSON) with
// generated records and reports what it measured.
//
//   ingestd-loadgen --url http://127.0.0.1:8080/api/visit/v1/ [--connections N] [--threads T]
//                   [--rate R | --interval S] [--duration S | --requests N] [--shape
//                   visit|activity|metric |
//                   --template FILE] [--records K] [--format array|ndjson] [--gzip]
//                   [--header 'Name: value']... [--seed N] [--timeout S] [--json]
//
// Exit codes: 0 the run ended (whatever the answers); 64 usage error (also a bad template);
// 68 (EX_NOHOST) the URL's host cannot be resolved.

#include <netdb.h>
#include <signal.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "body.h"
#include "http.h"
#include "load.h"
#include "report.h"

namespace {

using namespace ingestd::loadgen;

constexpr int kExitUsage = 64;
constexpr int kExitNoHost = 68;  // EX_NOHOST

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "ingestd-loadgen: %s\n", message.c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Loads an ingestd HTTP source with generated JSON records over keep-alive connections and "
      "prints requests/s, records/s, bytes/s, latency percentiles, answers by status and errors."};
  std::string url_text;
  uint32_t connections = 10;
  uint32_t threads = 1;
  double rate = 0;
  double duration_s = 0;
  uint64_t requests = 0;
  std::string shape_name = "visit";
  std::string template_path;
  uint32_t records = 1;
  std::string format = "array";
  bool gzip = false;
  std::vector<std::string> headers;
  uint64_t seed = 1;
  double timeout_s = 30;
  bool json = false;
  app.add_option("--url", url_text, "Where to POST: http://host[:port]/path")->required();
  app.add_option("-c,--connections", connections, "Keep-alive connections")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("-t,--threads", threads,
                 "Worker threads, each driving its share of the connections")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  auto* rate_opt = app.add_option("-r,--rate", rate,
                                  "Requests per second over all connections; 0: as fast as "
                                  "the server answers")
                       ->check(CLI::NonNegativeNumber)
                       ->capture_default_str();
  double interval_s = 0;
  app.add_option("-i,--interval", interval_s,
                 "Seconds between a connection's requests, on average (the same as --rate "
                 "connections/interval)")
      ->check(CLI::PositiveNumber)
      ->excludes(rate_opt);
  auto* duration_opt = app.add_option("-d,--duration", duration_s,
                                      "Seconds to send for (default 10 without --requests)")
                           ->check(CLI::PositiveNumber);
  auto* requests_opt = app.add_option("-n,--requests", requests, "Requests to send in all")
                           ->check(CLI::PositiveNumber);
  duration_opt->excludes(requests_opt);
  app.add_option("--shape", shape_name, "Records: visit, activity, metric or template")
      ->check(CLI::IsMember({"visit", "activity", "metric", "template"}))
      ->capture_default_str();
  app.add_option("--template", template_path,
                 "A file holding one record's template (implies --shape template); see "
                 "ingestd-loadgen(1) for its placeholders")
      ->check(CLI::ExistingFile);
  app.add_option("-k,--records", records, "Records per request body")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--format", format, "Body: a JSON array or NDJSON lines")
      ->check(CLI::IsMember({"array", "ndjson"}))
      ->capture_default_str();
  app.add_flag("--gzip", gzip, "Compress each body (Content-Encoding: gzip)");
  app.add_option("-H,--header", headers, "An extra request header 'Name: value' (repeatable)");
  app.add_option("--seed", seed, "Seed of the random placeholders")->capture_default_str();
  app.add_option("--timeout", timeout_s, "Seconds an answer may take before it is an error")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", json, "Print the results as one JSON line instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  std::string error;
  const std::optional<Url> url = parse_url(url_text, error);
  if (!url) return usage_error(fmt::format("--url {}: {}", url_text, error));

  LoadOptions options;
  if (!template_path.empty()) shape_name = "template";
  const Shape shape = *parse_shape(shape_name);
  if (shape == Shape::kTemplate) {
    if (template_path.empty()) return usage_error("--shape template needs --template FILE");
    std::ifstream in(template_path);
    std::stringstream text;
    text << in.rdbuf();
    options.body.record_template = text.str();
    // A file usually ends with a newline that is not part of the record.
    while (!options.body.record_template.empty() && (options.body.record_template.back() == '\n' ||
                                                     options.body.record_template.back() == '\r'))
      options.body.record_template.pop_back();
  } else {
    options.body.record_template = std::string(shape_template(shape));
  }
  options.body.records = records;
  options.body.format = format == "ndjson" ? BodyFormat::kNdjson : BodyFormat::kArray;
  options.body.gzip = gzip;
  options.body.seed = seed;
  BodyRenderer renderer;
  if (!renderer.init(options.body, error))
    return usage_error(fmt::format("the record template: {}", error));

  std::vector<std::pair<std::string, std::string>> extra;
  for (const std::string& h : headers) {
    auto parsed = parse_header(h);
    if (!parsed) return usage_error(fmt::format("--header '{}': expected 'Name: value'", h));
    extra.push_back(*parsed);
  }
  options.head = request_head(*url, renderer.content_type(), gzip, extra);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(url->port);
  if (const int rc = getaddrinfo(url->host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    std::fprintf(stderr, "ingestd-loadgen: cannot resolve %s: %s\n", url->host.c_str(),
                 gai_strerror(rc));
    return kExitNoHost;
  }
  std::memcpy(&options.address, found->ai_addr, found->ai_addrlen);
  options.address_size = found->ai_addrlen;
  freeaddrinfo(found);

  options.connections = connections;
  options.threads = threads;
  options.rate = interval_s > 0 ? connections / interval_s : rate;
  options.requests = requests;
  if (requests == 0 && duration_s == 0) duration_s = 10;
  options.duration_ns = static_cast<int64_t>(std::llround(duration_s * 1e9));
  options.timeout_ns = static_cast<int64_t>(std::llround(timeout_s * 1e9));

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::fprintf(stderr, "ingestd-loadgen: POST %s, %u connection%s, %s x %u record%s (%s%s)%s\n",
               url_text.c_str(), connections, connections == 1 ? "" : "s", shape_name.c_str(),
               records, records == 1 ? "" : "s", format.c_str(), gzip ? ", gzip" : "",
               options.rate > 0 ? fmt::format(", {:g} requests/s", options.rate).c_str() : "");
  const LoadResult result = run_load(options, g_stop);
  const std::string out = json ? format_json(result) + "\n" : format_text(result);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}
