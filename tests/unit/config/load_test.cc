// load(): whole pipeline files -> the model, and every class of error with its exact position.
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "config/options.h"
#include "test_catalog.h"

namespace ingestd::config {
namespace {

using testing::fake_env;
using testing::kFileSink;
using testing::kGenerator;
using testing::kJson;
using testing::kStdout;
using testing::kWindow;
using testing::load_text;
using testing::yaml;
using Strings = std::vector<std::string>;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

Pipeline load_ok(const std::string& text, const Environment& env = fake_env()) {
  auto result = load_text(text, env);
  EXPECT_TRUE(result.errors.empty()) << ::testing::PrintToString(result.errors);
  EXPECT_TRUE(result.pipeline.has_value());
  return result.pipeline.value_or(Pipeline{});
}

Strings load_errors(const std::string& text, const Environment& env = fake_env()) {
  auto result = load_text(text, env);
  EXPECT_FALSE(result.pipeline.has_value());
  return result.errors;
}

void expect_position(const Position& pos, int line, int column) {
  EXPECT_EQ(pos.file, "pipeline.yaml");
  EXPECT_EQ(pos.line, line);
  EXPECT_EQ(pos.column, column);
}

const char* kFullPipeline = R"(
data_dir: /srv/ingestd
log: {level: debug}
plugin_dirs: [/opt/plugins]
shutdown_timeout: 5s
io_threads: 2
batch: {max_events: 256, max_bytes: 64KiB, linger: 20ms}
sources:
  plays: {type: generator, rate: 50}
parsers:
  events:
    type: json
    inputs: [plays]
    workers: 4
    strip_prefix: "data: "
aggregates:
  sps:
    type: window
    inputs: events
    where: {sev: success}
    group_by: [device, title]
    window: {size: 1s}
    metrics: {sps: count}
sinks:
  out:
    type: file
    inputs: [sps]
    path: ${STATE}/sps.jsonl
    queue: {max_batches: 4, when_full: drop_newest}
  console: {type: stdout, inputs: [sps, events]}
)";

TEST(Load, FullPipelineYieldsTheExpectedModel) {
  Pipeline p = load_ok(yaml(kFullPipeline), fake_env({{"STATE", "/run/x"}}));
  EXPECT_EQ(p.path, "pipeline.yaml");
  EXPECT_EQ(p.data_dir, "/srv/ingestd");
  EXPECT_EQ(p.log_level, "debug");
  EXPECT_EQ(p.plugin_dirs, Strings{"/opt/plugins"});
  EXPECT_EQ(p.shutdown_timeout_ns, 5 * kSec);
  EXPECT_EQ(p.io_threads, 2);
  EXPECT_EQ(p.batch.max_events, 256u);
  EXPECT_EQ(p.batch.max_bytes, 64u * 1024);
  EXPECT_EQ(p.batch.linger_ns, 20 * kMs);

  ASSERT_EQ(p.components.size(), 5u);
  Strings names;
  for (const auto& c : p.components) names.push_back(c.name);
  EXPECT_EQ(names, (Strings{"plays", "events", "sps", "out", "console"}));

  const ComponentConfig& plays = p.components[0];
  EXPECT_EQ(plays.kind, Kind::kSource);
  EXPECT_EQ(plays.type, "generator");
  EXPECT_EQ(plays.descriptor, &kGenerator);
  EXPECT_TRUE(plays.inputs.empty());
  EXPECT_EQ(plays.options.get_int("rate"), 50);
  EXPECT_EQ(plays.options.get_duration_ns("interval"), kSec);
  expect_position(plays.pos, 8, 3);

  const ComponentConfig& events = *p.find("events");
  EXPECT_EQ(events.kind, Kind::kParser);
  EXPECT_EQ(events.descriptor, &kJson);
  EXPECT_EQ(events.inputs, Strings{"plays"});
  EXPECT_EQ(events.workers, 4);
  EXPECT_EQ(events.options.get_string("strip_prefix"), "data: ");
  EXPECT_EQ(events.options.get_string("on_error"), "drop");
  expect_position(events.pos, 10, 3);

  const ComponentConfig& sps = *p.find("sps");
  EXPECT_EQ(sps.kind, Kind::kAggregator);
  EXPECT_EQ(sps.descriptor, &kWindow);
  EXPECT_EQ(sps.inputs, Strings{"events"});
  EXPECT_EQ(sps.options.get_object("where").find("sev")->s, "success");
  EXPECT_EQ(sps.options.get_list("group_by"), (Strings{"device", "title"}));
  EXPECT_EQ(sps.options.get_object("window").get_duration_ns("size"), kSec);
  EXPECT_EQ(sps.options.get_object("window").get_string("time"), "processing");
  EXPECT_EQ(sps.options.get_object("metrics").find("sps")->s, "count");
  Strings paths;
  for (const auto& [path, pos] : sps.option_positions) paths.push_back(path);
  EXPECT_EQ(paths, (Strings{"group_by", "metrics", "metrics.sps", "where", "where.sev", "window",
                            "window.size"}));
  expect_position(sps.option_positions.at("window"), 21, 13);
  expect_position(sps.option_positions.at("window.size"), 21, 20);
  expect_position(sps.option_positions.at("metrics.sps"), 22, 20);
  expect_position(sps.option_positions.at("group_by"), 20, 15);
  expect_position(sps.option_positions.at("where.sev"), 19, 18);

  const ComponentConfig& out = *p.find("out");
  EXPECT_EQ(out.kind, Kind::kSink);
  EXPECT_EQ(out.descriptor, &kFileSink);
  EXPECT_EQ(out.options.get_string("path"), "/run/x/sps.jsonl");
  EXPECT_EQ(out.options.get_size("rotate_size"), 64u << 20);
  EXPECT_EQ(out.queue.max_batches, 4u);
  EXPECT_EQ(out.queue.max_bytes, 64u << 20);
  EXPECT_EQ(out.queue.when_full, WhenFull::kDropNewest);
  EXPECT_EQ(out.workers, 1);
  expect_position(out.option_positions.at("path"), 27, 11);

  const ComponentConfig& console = *p.find("console");
  EXPECT_EQ(console.descriptor, &kStdout);
  EXPECT_EQ(console.inputs, (Strings{"sps", "events"}));
  EXPECT_EQ(console.queue.when_full, WhenFull::kBlock);
  EXPECT_EQ(console.options.get_object("retry").get_duration_ns("initial"), 100 * kMs);
  EXPECT_EQ(p.find("nope"), nullptr);
}

TEST(Load, PipelineDefaultsWhenKeysAreLeftOut) {
  Pipeline p = load_ok("sources:\n  gen: {type: generator}\n");
  EXPECT_EQ(p.data_dir, "/var/lib/ingestd");
  EXPECT_EQ(p.log_level, "info");
  EXPECT_TRUE(p.plugin_dirs.empty());
  EXPECT_EQ(p.shutdown_timeout_ns, 30 * kSec);
  EXPECT_EQ(p.io_threads, 1);
  EXPECT_EQ(p.batch.max_events, 1024u);
  EXPECT_EQ(p.batch.max_bytes, 1u << 20);
  EXPECT_EQ(p.batch.linger_ns, 100 * kMs);
  ASSERT_EQ(p.components.size(), 1u);
  EXPECT_EQ(p.components[0].workers, 1);
  EXPECT_EQ(p.components[0].queue.max_batches, 16u);
  EXPECT_EQ(p.components[0].queue.max_bytes, 64u << 20);
}

// The default of `workers`: the cores of the process's CPU affinity, which the test sets itself,
// for parsers and sinks that are neither single-instance nor ordered.
TEST(Load, WorkersDefaultToTheCoresTheProcessMayUse) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &all)) cpus.push_back(cpu);
  ASSERT_FALSE(cpus.empty());
  const std::string text = yaml(R"(
    sources:
      gen: {type: generator}
    parsers:
      p: {type: json, inputs: [gen]}
      q: {type: json, inputs: [gen], workers: 3}
    sinks:
      s: {type: stdout, inputs: [p, q]}
      f: {type: file, inputs: [p], path: x}
      o: {type: ordered, inputs: [q]}
  )");
  for (size_t n : {size_t{1}, std::min<size_t>(cpus.size(), 2)}) {
    cpu_set_t some;
    CPU_ZERO(&some);
    for (size_t i = 0; i < n; ++i) CPU_SET(cpus[i], &some);
    ASSERT_EQ(sched_setaffinity(0, sizeof some, &some), 0);
    Pipeline p = load_ok(text);
    ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
    EXPECT_EQ(p.find("p")->workers, static_cast<int>(n)) << n << " cpus";
    EXPECT_EQ(p.find("q")->workers, 3);
    EXPECT_EQ(p.find("s")->workers, static_cast<int>(n)) << n << " cpus";
    EXPECT_EQ(p.find("f")->workers, 1);  // single-instance
    EXPECT_EQ(p.find("o")->workers, 1);  // writes in order
  }
}

TEST(Load, ComponentsNothingConsumesAreFine) {
  Pipeline p = load_ok(yaml(R"(
sources:
  gen: {type: generator}
  idle: {type: generator}
parsers:
  p: {type: json, inputs: [gen]}
)"));
  EXPECT_EQ(p.components.size(), 3u);
}

TEST(Load, UnknownTopLevelKeySuggestsTheClosest) {
  EXPECT_EQ(load_errors("sourcs:\n  gen: {type: generator}\nzebra: {listen: x}\n"),
            (Strings{"pipeline.yaml:1:1: unknown key 'sourcs' (did you mean 'sources'?)",
                     "pipeline.yaml:3:1: unknown key 'zebra'"}));
}

TEST(Load, AdminDefaultsToLoopbackAndCanBeTurnedOff) {
  Pipeline p = load_ok("sources:\n  gen: {type: generator}\n");
  EXPECT_TRUE(p.admin.enabled);
  EXPECT_EQ(p.admin.listen, "127.0.0.1:8686");
  EXPECT_EQ(p.admin.token_file, "");
  EXPECT_EQ(p.admin.unhealthy_after_ns, 60 * kSec);
  EXPECT_FALSE(load_ok("admin: false\nsources:\n  gen: {type: generator}\n").admin.enabled);
  Pipeline q = load_ok(
      "admin: {listen: '[::1]:0', token_file: /etc/t, unhealthy_after: 5s}\n"
      "sources:\n  gen: {type: generator}\n");
  EXPECT_TRUE(q.admin.enabled);
  EXPECT_EQ(q.admin.listen, "[::1]:0");
  EXPECT_EQ(q.admin.token_file, "/etc/t");
  EXPECT_EQ(q.admin.unhealthy_after_ns, 5 * kSec);
  // Off loopback with a token file: fine.
  EXPECT_EQ(load_ok("admin: {listen: 0.0.0.0:9000, token_file: /etc/t}\nsources:\n"
                    "  gen: {type: generator}\n")
                .admin.listen,
            "0.0.0.0:9000");
}

TEST(Load, AdminErrorsHavePositions) {
  EXPECT_EQ(load_errors("admin: {listen: 0.0.0.0:8686}\nsources:\n  gen: {type: generator}\n"),
            (Strings{"pipeline.yaml:1:17: admin: listen '0.0.0.0:8686' is not a loopback "
                     "address: give token_file (a file holding the bearer token clients must "
                     "send) or listen on 127.0.0.1"}));
  EXPECT_EQ(load_errors("admin:\n  listen: example.com:80\n  tokn: x\n"
                        "sources:\n  gen: {type: generator}\n"),
            (Strings{"pipeline.yaml:2:11: admin: listen 'example.com:80': the host must be an IP "
                     "address or localhost",
                     "pipeline.yaml:3:3: admin: unknown option 'tokn'"}));
  EXPECT_EQ(load_errors("admin: {listen: '127.0.0.1:99999'}\nsources:\n  gen: {type: generator}\n"),
            (Strings{"pipeline.yaml:1:17: admin: listen '127.0.0.1:99999': the port must be a "
                     "number from 0 to 65535 (0: any free port)"}));
  EXPECT_EQ(load_errors("admin: yes please\nsources:\n  gen: {type: generator}\n"),
            (Strings{"pipeline.yaml:1:8: admin: expected false or a mapping with listen and "
                     "token_file, got 'yes please'"}));
}

TEST(Load, ListenAddresses) {
  std::string host, error;
  uint16_t port = 1;
  EXPECT_TRUE(parse_listen("127.0.0.1:0", host, port, error));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
  EXPECT_TRUE(parse_listen("[::1]:8686", host, port, error));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8686);
  EXPECT_FALSE(parse_listen("::1:8686", host, port, error));
  EXPECT_FALSE(parse_listen("8686", host, port, error));
  EXPECT_FALSE(parse_listen("127.0.0.1:", host, port, error));
  EXPECT_TRUE(is_loopback("127.0.0.2"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("10.0.0.1"));
}

TEST(Load, BadTopLevelValues) {
  EXPECT_EQ(
      load_errors(yaml(R"(
log: {level: verbose}
io_threads: 0
batch:
  max_bytes: lots
  linger: 5
shutdown_timeout: forever
sources: [a]
)")),
      (Strings{
          "pipeline.yaml:1:14: log.level: expected one of trace, debug, info, warning, warn, "
          "error, "
          "got 'verbose'",
          "pipeline.yaml:2:13: io_threads must be >= 1",
          "pipeline.yaml:4:14: batch.max_bytes: expected a size such as 4096, 64KiB or 1MiB, "
          "got 'lots'",
          "pipeline.yaml:5:11: batch.linger: expected a duration such as 1s or 250ms, got '5' "
          "(a unit is required)",
          "pipeline.yaml:6:19: shutdown_timeout: expected a duration such as 1s or 250ms, got "
          "'forever'",
          "pipeline.yaml:7:10: sources: expected a mapping of names to components, got a list",
      }));
}

TEST(Load, UnknownTypeListsTheKnownTypesOfThatKind) {
  EXPECT_EQ(
      load_errors("sources:\n  gen:\n    type: generatr\n"),
      (Strings{"pipeline.yaml:3:11: sources.gen: unknown source type 'generatr' (did you mean "
               "'generator'?); known: file, generator"}));
  EXPECT_EQ(load_errors("sources:\n  gen: {type: json}\n"),
            (Strings{"pipeline.yaml:2:15: sources.gen: unknown source type 'json'; known: file, "
                     "generator"}));
}

TEST(Load, MissingTypeAndNonMappingComponents) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen: {type: generator}
  other: generator
sinks:
  out: {inputs: [gen], path: a}
)")),
      (Strings{
          "pipeline.yaml:3:10: sources.other: expected a mapping with a 'type', got 'generator'",
          "pipeline.yaml:5:3: sinks.out: missing required key 'type'",
      }));
}

TEST(Load, InvalidComponentName) {
  EXPECT_EQ(load_errors("sources:\n  my gen: {type: generator}\n"),
            (Strings{"pipeline.yaml:2:3: sources.my gen: invalid name 'my gen': use letters, "
                     "digits, '_' and '-'"}));
}

TEST(Load, InputsAreRequiredAndNonEmptyBeyondSources) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  out: {type: stdout}
  all: {type: stdout, inputs: []}
)")),
            (Strings{"pipeline.yaml:4:3: sinks.out (stdout): missing required key 'inputs'",
                     "pipeline.yaml:5:31: sinks.all (stdout): inputs must not be empty"}));
}

// `inputs: [w.late]` reads the window's side output of late events, turned on by `late: route`.
const char* kLateRouted = R"(
sources:
  gen: {type: generator}
aggregates:
  w:
    type: window
    inputs: [gen]
    window: {size: 1s, time: event, late: route}
    metrics: {n: count}
sinks:
  out: {type: stdout, inputs: [w]}
  late: {type: stdout, inputs: [w.late]}
)";

TEST(Load, SideOutputInputsReadAPortTheProducerTurnedOn) {
  Pipeline p = load_ok(yaml(kLateRouted));
  EXPECT_EQ(p.find("w")->side_outputs, Strings{"late"});
  EXPECT_EQ(p.find("late")->inputs, Strings{"w.late"});
  EXPECT_EQ(p.find("out")->side_outputs, Strings{});
  EXPECT_EQ(split_input("w.late"), (std::pair<std::string_view, std::string_view>{"w", "late"}));
  EXPECT_EQ(split_input("w"), (std::pair<std::string_view, std::string_view>{"w", ""}));
}

TEST(Load, SideOutputErrorsHavePositions) {
  // A port the component lacks, a port it has off, a component that does not exist.
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
aggregates:
  w:
    type: window
    inputs: [gen]
    window: {size: 1s}
    metrics: {n: count}
sinks:
  a: {type: stdout, inputs: [w.early]}
  b: {type: stdout, inputs: [w.late]}
  c: {type: stdout, inputs: [gen.late]}
  d: {type: stdout, inputs: [nope.late]}
)")),
            (Strings{"pipeline.yaml:10:30: sinks.a (stdout): input 'w.early': window aggregate "
                     "has no output 'early'; its side outputs: late",
                     "pipeline.yaml:11:30: sinks.b (stdout): input 'w.late' is off: set "
                     "`window.late: route` on aggregates.w to turn it on",
                     "pipeline.yaml:12:30: sinks.c (stdout): input 'gen.late': generator source "
                     "has no output 'late'; it has only its main output: 'gen'",
                     "pipeline.yaml:13:30: sinks.d (stdout): input 'nope' does not exist"}));
}

TEST(Load, ASideOutputTurnedOnNeedsAReader) {
  std::string text = yaml(kLateRouted);
  text.erase(text.find("  late: {type: stdout"));
  EXPECT_EQ(load_errors(text),
            (Strings{"pipeline.yaml:7:43: aggregates.w (window): window.late: route sends "
                     "records to the output 'w.late', but no component reads it: add `inputs: "
                     "[w.late]` to a sink (or another component)"}));
}

TEST(Load, SourcesTakeNoInputsWorkersOrQueue) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  a: {type: generator}
  b:
    type: generator
    inputs: [a]
    workers: 2
    queue: {max_batches: 2}
)")),
      (Strings{"pipeline.yaml:5:5: sources.b (generator): sources take no inputs",
               "pipeline.yaml:6:5: sources.b (generator): 'workers' is only for parsers and sinks",
               "pipeline.yaml:7:5: sources.b (generator): sources have no input queue"}));
}

TEST(Load, WorkersBoundsKindsAndSingleWorkerPlugins) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
parsers:
  p: {type: json, inputs: [gen], workers: 65}
aggregates:
  w:
    type: window
    inputs: [p]
    workers: 2
    window: {size: 1s}
    metrics: {n: count}
sinks:
  f: {type: file, inputs: [w], path: x, workers: 3}
  s: {type: stdout, inputs: [w], workers: 0}
)")),
            (Strings{
                "pipeline.yaml:4:43: parsers.p (json): workers must be <= 64",
                "pipeline.yaml:9:5: aggregates.w (window): 'workers' is only for parsers and sinks",
                "pipeline.yaml:13:50: sinks.f (file): workers must be 1: a file sink runs a single "
                "instance",
                "pipeline.yaml:14:43: sinks.s (stdout): workers must be >= 1",
            }));
  Pipeline ok = load_ok(
      "sources:\n  gen: {type: generator}\nsinks:\n  s: {type: stdout, inputs: gen, workers: "
      "64}\n");
  EXPECT_EQ(ok.find("s")->workers, 64);
}

TEST(Load, QueueKeysAreChecked) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  out:
    type: stdout
    inputs: [gen]
    queue: {max_batches: 0, max_bytes: 1MiB, when_full: drop}
  two:
    type: stdout
    inputs: [gen]
    queue: {max_batch: 2}
)")),
      (Strings{
          "pipeline.yaml:7:26: sinks.out (stdout): queue.max_batches must be >= 1",
          "pipeline.yaml:7:57: sinks.out (stdout): queue.when_full: expected one of block, "
          "drop_newest, got 'drop'",
          "pipeline.yaml:11:13: sinks.two (stdout): unknown key 'queue.max_batch' (did you mean "
          "'queue.max_batches'?)",
      }));
  Pipeline p = load_ok(
      "sources:\n  gen: {type: generator}\nsinks:\n"
      "  out: {type: stdout, inputs: [gen], queue: {max_bytes: 2MiB}}\n");
  EXPECT_EQ(p.find("out")->queue.max_bytes, 2u << 20);
  EXPECT_EQ(p.find("out")->queue.max_batches, 16u);
}

TEST(Load, RetryAndBreakerKeysAreChecked) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen: {type: generator, retry: {max_attempts: 3}}
parsers:
  p: {type: json, inputs: [gen], breaker: {failures: 2}}
sinks:
  out:
    type: stdout
    inputs: [p]
    retry: {initial: 0s, multiplier: 0.5, jitter: half, max_attempt: 3}
    breaker: {failure_ratio: 1.5, half_open_probes: 0, window: soon}
)")),
      (Strings{
          "pipeline.yaml:2:26: sources.gen (generator): 'retry' is only for sinks",
          "pipeline.yaml:4:34: parsers.p (json): 'breaker' is only for sinks",
          "pipeline.yaml:9:22: sinks.out (stdout): retry.initial must be >= 1ms",
          "pipeline.yaml:9:38: sinks.out (stdout): retry.multiplier must be >= 1",
          "pipeline.yaml:9:51: sinks.out (stdout): retry.jitter: expected one of full, none, got "
          "'half'",
          "pipeline.yaml:9:57: sinks.out (stdout): unknown key 'retry.max_attempt' (did you mean "
          "'retry.max_attempts'?)",
          "pipeline.yaml:10:30: sinks.out (stdout): breaker.failure_ratio must be <= 1",
          "pipeline.yaml:10:53: sinks.out (stdout): breaker.half_open_probes must be >= 1",
          "pipeline.yaml:10:64: sinks.out (stdout): breaker.window: expected a duration such as 1s "
          "or 250ms, got 'soon'",
      }));
}

TEST(Load, RetryAndBreakerDefaultsAndValues) {
  Pipeline defaults = load_ok(
      "sources:\n  gen: {type: generator}\nsinks:\n"
      "  out: {type: stdout, inputs: [gen]}\n");
  const ComponentConfig& d = *defaults.find("out");
  EXPECT_EQ(d.retry.initial_ns, 100'000'000);
  EXPECT_EQ(d.retry.max_ns, 30'000'000'000);
  EXPECT_EQ(d.retry.multiplier, 2.0);
  EXPECT_EQ(d.retry.jitter, Jitter::kFull);
  EXPECT_EQ(d.retry.max_attempts, 0u);
  EXPECT_EQ(d.retry.max_elapsed_ns, 0);
  EXPECT_EQ(d.breaker.failures, 5u);
  EXPECT_EQ(d.breaker.failure_ratio, 0.0);
  EXPECT_EQ(d.breaker.window_ns, 60'000'000'000);
  EXPECT_EQ(d.breaker.open_for_ns, 10'000'000'000);
  EXPECT_EQ(d.breaker.half_open_probes, 1u);

  Pipeline p = load_ok(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  out:
    type: stdout
    inputs: [gen]
    retry: {initial: 10ms, max: 1s, multiplier: 3, jitter: none, max_attempts: 4, max_elapsed: 1m}
    breaker: {failures: 0, failure_ratio: 0.25, window: 30s, open_for: 2s, half_open_probes: 2}
)"));
  const ComponentConfig& c = *p.find("out");
  EXPECT_EQ(c.retry, (RetryConfig{.initial_ns = 10'000'000,
                                  .max_ns = 1'000'000'000,
                                  .multiplier = 3,
                                  .jitter = Jitter::kNone,
                                  .max_attempts = 4,
                                  .max_elapsed_ns = 60'000'000'000}));
  EXPECT_EQ(c.breaker, (BreakerConfig{.failures = 0,
                                      .failure_ratio = 0.25,
                                      .window_ns = 30'000'000'000,
                                      .open_for_ns = 2'000'000'000,
                                      .half_open_probes = 2}));
}

TEST(Load, SpoolKeysAreChecked) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen: {type: generator, spool: false}
sinks:
  a:
    type: stdout
    inputs: [gen]
    spool: {segment_size: 1KiB, fsync: sometimes, replay_rate: 0, when_ful: block}
  b: {type: stdout, inputs: [gen], spool: true}
  c: {type: stdout, inputs: [gen], spool: off}
  d: {type: stdout, inputs: [gen], spool: {max_size: 1MiB, segment_size: 2MiB}}
  e: {type: stdout, inputs: [gen], spool: {max_size: 32MiB}}
  f: {type: stdout, inputs: [gen], spool: [a]}
)")),
      (Strings{
          "pipeline.yaml:2:26: sources.gen (generator): 'spool' is only for sinks",
          "pipeline.yaml:7:27: sinks.a (stdout): spool.segment_size must be >= 64KiB",
          "pipeline.yaml:7:40: sinks.a (stdout): spool.fsync: expected one of always, interval, "
          "never, got 'sometimes'",
          "pipeline.yaml:7:64: sinks.a (stdout): spool.replay_rate must be >= 1",
          "pipeline.yaml:7:67: sinks.a (stdout): unknown key 'spool.when_ful' (did you mean "
          "'spool.when_full'?)",
          "pipeline.yaml:8:43: sinks.b (stdout): spool: expected a mapping or false, got 'true' "
          "(the spool is on by default; `spool: {}` takes its defaults)",
          "pipeline.yaml:9:43: sinks.c (stdout): spool: expected a mapping or false, got 'off'",
          "pipeline.yaml:10:74: sinks.d (stdout): spool.segment_size (2097152 bytes) must be <= "
          "spool.max_size (1048576 bytes)",
          "pipeline.yaml:11:54: sinks.e (stdout): spool.segment_size (67108864 bytes) must be <= "
          "spool.max_size (33554432 bytes)",
          "pipeline.yaml:12:43: sinks.f (stdout): spool: expected a mapping, got a list",
      }));
}

TEST(Load, SpoolDefaultsAndValues) {
  Pipeline defaults = load_ok(
      "sources:\n  gen: {type: generator}\nsinks:\n"
      "  out: {type: stdout, inputs: [gen]}\n  empty: {type: stdout, inputs: [gen], spool: {}}\n");
  const SpoolConfig& d = defaults.find("out")->spool;
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.max_size, uint64_t{1} << 30);
  EXPECT_EQ(d.segment_size, uint64_t{64} << 20);
  EXPECT_EQ(d.fsync, SpoolConfig::Fsync::kInterval);
  EXPECT_EQ(d.fsync_interval_ns, kSec);
  EXPECT_EQ(d.when_full, SpoolConfig::SpoolFull::kBlock);
  EXPECT_EQ(d.replay, SpoolConfig::Replay::kOrdered);
  EXPECT_EQ(d.replay_rate, 20'000u);
  EXPECT_EQ(defaults.find("empty")->spool, d);

  Pipeline p = load_ok(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  on:
    type: stdout
    inputs: [gen]
    spool:
      max_size: 10MiB
      segment_size: 64KiB
      fsync: always
      fsync_interval: 250ms
      when_full: drop_oldest
      replay: backfill
      replay_rate: 500
  off: {type: stdout, inputs: [gen], spool: "${SPOOL:-false}"}
)"));
  EXPECT_EQ(p.find("on")->spool, (SpoolConfig{.max_size = 10u << 20,
                                              .segment_size = 64u << 10,
                                              .fsync = SpoolConfig::Fsync::kAlways,
                                              .fsync_interval_ns = 250 * kMs,
                                              .when_full = SpoolConfig::SpoolFull::kDropOldest,
                                              .replay = SpoolConfig::Replay::kBackfill,
                                              .replay_rate = 500}));
  EXPECT_FALSE(p.find("off")->spool.enabled);
}

TEST(Load, UnknownAndMissingPluginOptions) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  out:
    type: file
    input: [gen]
    pathh: /tmp/x
)")),
      (Strings{
          "pipeline.yaml:4:3: sinks.out (file): missing required key 'inputs'",
          "pipeline.yaml:4:3: sinks.out (file): missing required option 'path'",
          "pipeline.yaml:6:5: sinks.out (file): unknown option 'input' (did you mean 'inputs'?)",
          "pipeline.yaml:7:5: sinks.out (file): unknown option 'pathh' (did you mean 'path'?)",
      }));
}

TEST(Load, DuplicateKeysAreReported) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
  gen: {type: file, path: x}
sinks:
  out: {type: stdout, inputs: [gen], format: json, format: text}
)")),
            (Strings{"pipeline.yaml:3:3: sources: duplicate key 'gen'",
                     "pipeline.yaml:5:52: sinks.out: duplicate key 'format'"}));
}

TEST(Load, EnvironmentIsSubstitutedInEveryScalar) {
  auto env = fake_env({{"RATE", "25"}, {"DIR", "/data"}, {"SRC", "gen"}});
  Pipeline p = load_ok(yaml(R"(
data_dir: ${DIR}/state
sources:
  gen: {type: "${SOURCE_TYPE:-generator}", rate: "${RATE}", format: "${FMT:-text}"}
sinks:
  out: {type: file, inputs: ["${SRC}"], path: "${DIR}/out-$$1.jsonl"}
)"),
                       env);
  EXPECT_EQ(p.data_dir, "/data/state");
  EXPECT_EQ(p.find("gen")->type, "generator");
  EXPECT_EQ(p.find("gen")->options.get_int("rate"), 25);
  EXPECT_EQ(p.find("gen")->options.get_string("format"), "text");
  EXPECT_EQ(p.find("out")->inputs, Strings{"gen"});
  EXPECT_EQ(p.find("out")->options.get_string("path"), "/data/out-$1.jsonl");
}

TEST(Load, UnsetVariableIsAnErrorAtItsScalar) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  out: {type: file, inputs: [gen], path: "${DIR}/out.jsonl"}
)")),
            (Strings{"pipeline.yaml:4:42: sinks.out (file): path: environment variable 'DIR' is "
                     "not set (write ${DIR:-default} to give a default)"}));
}

TEST(Load, SubstitutionHappensBeforeTypeChecks) {
  EXPECT_EQ(load_errors("sources:\n  gen: {type: generator, rate: \"${RATE}\"}\n",
                        fake_env({{"RATE", "fast"}})),
            (Strings{"pipeline.yaml:2:32: sources.gen (generator): rate: expected an integer, got "
                     "'fast'"}));
}

TEST(Load, DanglingInputSuggestsAnExistingName) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen: {type: generator}
parsers:
  events: {type: json, inputs: [gen]}
sinks:
  out: {type: stdout, inputs: [evnts]}
  other: {type: stdout, inputs: [events, nothing_like_it, events]}
)")),
      (Strings{
          "pipeline.yaml:6:32: sinks.out (stdout): input 'evnts' does not exist (did you mean "
          "'events'?)",
          "pipeline.yaml:7:42: sinks.other (stdout): input 'nothing_like_it' does not exist",
          "pipeline.yaml:7:59: sinks.other (stdout): input 'events' is listed twice",
      }));
}

TEST(Load, SinkCannotBeAnInput) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
sinks:
  a: {type: stdout, inputs: [gen]}
  b: {type: stdout, inputs: [a]}
)")),
            (Strings{"pipeline.yaml:5:30: sinks.b (stdout): input 'a' is a sink; a sink cannot be "
                     "an input"}));
}

TEST(Load, NamesAreUniqueAcrossSections) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  events: {type: generator}
parsers:
  events: {type: json, inputs: [events]}
)")),
            (Strings{"pipeline.yaml:4:3: parsers.events (json): name 'events' is already used by "
                     "sources.events"}));
}

TEST(Load, CyclesAreNamedInTheDirectionDataFlows) {
  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
parsers:
  a: {type: json, inputs: [gen, b]}
  b: {type: json, inputs: [a]}
)")),
            (Strings{"pipeline.yaml:5:28: parsers.b (json): cycle: a -> b -> a"}));

  EXPECT_EQ(load_errors(yaml(R"(
sources:
  gen: {type: generator}
parsers:
  p1: {type: json, inputs: [gen, w]}
  p2: {type: json, inputs: [p1]}
aggregates:
  w: {type: window, inputs: [p2], window: {size: 1s}, metrics: {n: count}}
)")),
            (Strings{"pipeline.yaml:5:29: parsers.p2 (json): cycle: p1 -> p2 -> w -> p1"}));

  EXPECT_EQ(load_errors("parsers:\n  a: {type: json, inputs: [a]}\n"),
            (Strings{"pipeline.yaml:2:28: parsers.a (json): cycle: a -> a"}));
}

TEST(Load, ManyErrorsAreAllReportedInFileOrder) {
  EXPECT_EQ(
      load_errors(yaml(R"(
sources:
  gen:
    type: generatr
parsers:
  events: {type: json, inputs: [gen]}
aggregates:
  sps:
    type: window
    inputs: [events]
    window: {size: fast}
    metrics: {sps: count}
sinks:
  out:
    type: file
    inputs: [evnts]
    pathh: /tmp/x
    rotate_size: 1KiB
)")),
      (Strings{
          "pipeline.yaml:3:11: sources.gen: unknown source type 'generatr' (did you mean "
          "'generator'?); known: file, generator",
          "pipeline.yaml:10:20: aggregates.sps (window): window.size: expected a duration such "
          "as 1s or 250ms, got 'fast'",
          "pipeline.yaml:13:3: sinks.out (file): missing required option 'path'",
          "pipeline.yaml:15:14: sinks.out (file): input 'evnts' does not exist (did you mean "
          "'events'?)",
          "pipeline.yaml:16:5: sinks.out (file): unknown option 'pathh' (did you mean 'path'?)",
          "pipeline.yaml:17:18: sinks.out (file): rotate_size must be >= 1MiB",
      }));
}

TEST(Load, SyntaxErrorsAndEmptyFiles) {
  EXPECT_EQ(load_errors("sources:\n  gen: {type: generator\n"),
            (Strings{"pipeline.yaml:3:1: YAML syntax error: end of map flow not found"}));
  EXPECT_EQ(load_errors(""),
            (Strings{"pipeline.yaml:1:1: the file is empty: expected a mapping with sources and "
                     "sinks"}));
  EXPECT_EQ(load_errors("- a\n"),
            (Strings{"pipeline.yaml:1:1: expected a mapping with sources and sinks, got a list"}));
  EXPECT_EQ(load_errors("# nothing but a comment\n"),
            (Strings{"pipeline.yaml:1:1: the file is empty: expected a mapping with sources and "
                     "sinks"}));
  EXPECT_EQ(load_errors("# c\n,sources: {}\n"),
            (Strings{"pipeline.yaml:2:1: YAML syntax error: unexpected ','"}));
}

TEST(Load, OneDocumentOnly) {
  EXPECT_EQ(load_errors("sources: {}\n---\nsinks: {}\n"),
            (Strings{"pipeline.yaml:2:1: expected one YAML document, found a second one"}));
  EXPECT_EQ(load_errors("sources: {}\n...\n# end\nsinks: {}\n"),
            (Strings{"pipeline.yaml:4:1: expected one YAML document, found a second one"}));
  load_ok("%YAML 1.2\n---\n# pipeline\nsources:\n  gen: {type: generator}\n...\n");
  load_ok("--- # the only document\nsources:\n  gen: {type: generator}\n");
}

// A file in another encoding, or with bytes that are not UTF-8, is named as such, with the
// position of the first bad byte, instead of a YAML error far from it or a silent misreading.
TEST(Load, EncodingErrorsNameTheEncodingAndThePosition) {
  EXPECT_EQ(load_errors(std::string("\xFF\xFEs\0o\0", 6)),
            (Strings{"pipeline.yaml:1:1: the file is UTF-16 (little-endian) text (it starts with "
                     "that byte order mark); save it as UTF-8"}));
  EXPECT_EQ(load_errors(std::string("\xFE\xFF\0s", 4)),
            (Strings{"pipeline.yaml:1:1: the file is UTF-16 (big-endian) text (it starts with "
                     "that byte order mark); save it as UTF-8"}));
  EXPECT_EQ(load_errors(std::string("\xFF\xFE\0\0s\0\0\0", 8)),
            (Strings{"pipeline.yaml:1:1: the file is UTF-32 (little-endian) text (it starts with "
                     "that byte order mark); save it as UTF-8"}));
  EXPECT_EQ(load_errors("sources:\n  g\xE9n: {type: generator}\n"),
            (Strings{"pipeline.yaml:2:4: invalid UTF-8 (byte 0xE9): the file must be UTF-8 text"}));
  EXPECT_EQ(load_errors("sources: {}\n# \xC0\xAF overlong\n"),
            (Strings{"pipeline.yaml:2:3: invalid UTF-8 (byte 0xC0): the file must be UTF-8 text"}));
  EXPECT_EQ(
      load_errors(std::string("sources: {}\nx\0", 14)),
      (Strings{"pipeline.yaml:2:2: a NUL byte: the file must be UTF-8 text (is it UTF-16?)"}));
  // UTF-8 itself, with or without its byte order mark, is fine.
  load_ok(
      "\xEF\xBB\xBFsources:\n  gen: {type: generator, format: json} # caf\xC3\xA9 "
      "\xF0\x9F\x98\x80\n");
}

TEST(Load, ATabInTheIndentationIsNamed) {
  EXPECT_EQ(load_errors("sources:\n\tgen: {type: generator}\n"),
            (Strings{"pipeline.yaml:2:1: YAML syntax error: a tab character indents this line; "
                     "YAML indents with spaces only"}));
  EXPECT_EQ(load_errors("sources:\n  gen:\n  \ttype: generator\n"),
            (Strings{"pipeline.yaml:3:3: YAML syntax error: a tab character indents this line; "
                     "YAML indents with spaces only"}));
  // Tabs elsewhere are not indentation.
  load_ok("sources:\n  gen: {type: generator,\tformat: json}\t# tab\n");
}

TEST(Load, AnIntegerBeyondItsTypeIsOutOfRange) {
  EXPECT_EQ(load_errors("io_threads: 99999999999999999999\n"),
            (Strings{"pipeline.yaml:1:13: io_threads: 99999999999999999999 is out of range: "
                     "expected an integer from 1 to 1024"}));
  EXPECT_EQ(load_errors("sources:\n  gen: {type: generator, rate: -99999999999999999999}\n"),
            (Strings{"pipeline.yaml:2:32: sources.gen (generator): rate: -99999999999999999999 "
                     "is out of range: expected an integer from 1 to 1000"}));
  EXPECT_EQ(load_errors("io_threads: 12x\n"),
            (Strings{"pipeline.yaml:1:13: io_threads: expected an integer, got '12x'"}));
}

// The duplicate check of a mapping's keys is linear: a file may hold tens of thousands of
// components. A scan of the keys seen so far made 100,000 keys cost 5e9 comparisons (tens of
// seconds); a hash set takes milliseconds. The bound is loose on purpose: it only tells the two
// apart, on any machine.
TEST(MapEntries, ManyKeysAreCheckedForDuplicatesInLinearTime) {
  constexpr int kKeys = 100'000;
  std::string text;
  for (int i = 0; i < kKeys; ++i) text += fmt::format("key{:06}: {}\n", i, i);
  text += "key000007: again\n";
  const YAML::Node root = YAML::Load(text);
  detail::Reporter reporter("big.yaml");
  const auto start = std::chrono::steady_clock::now();
  const std::vector<detail::MapEntry> entries = detail::map_entries(root, reporter, "");
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(entries.size(), static_cast<size_t>(kKeys));
  ASSERT_EQ(reporter.count(), 1u);
  EXPECT_EQ(reporter.sorted()[0].to_string(), "big.yaml:100001:1: duplicate key 'key000007'");
  EXPECT_LT(took.count(), 10.0);
}

TEST(Load, ErrorsAreAppendedToTheCallersList) {
  testing::TestCatalog catalog;
  std::vector<Error> errors(1);  // not {Error{{...}, "kept"}}: GCC 12 -O3 warns (syntax_test.cc)
  errors[0].pos = {"earlier.yaml", 1, 1};
  errors[0].message = "kept";
  EXPECT_FALSE(load("p.yaml", "io_threads: 0\n", catalog, fake_env(), errors).has_value());
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].message, "kept");
  EXPECT_EQ(errors[1].to_string(), "p.yaml:1:13: io_threads must be >= 1");
}

const char* kCompact = R"(
sources:
  gen: {type: generator, rate: 10, format: json}
sinks:
  out: {type: file, inputs: [gen], path: /x, rotate_size: 64MiB}
)";

const char* kVerbose = R"(
sinks:
  out:
    path: /x
    rotate_size: 67108864
    inputs: gen
    type: file
sources:
  gen:
    type: generator
)";

TEST(Fingerprint, EqualForEquivalentConfigsAndDifferentOtherwise) {
  Pipeline a = load_ok(yaml(kCompact));
  Pipeline b = load_ok(yaml(kVerbose));
  EXPECT_EQ(a.find("gen")->fingerprint, b.find("gen")->fingerprint);
  EXPECT_EQ(a.find("out")->fingerprint, b.find("out")->fingerprint);
  EXPECT_NE(a.find("gen")->fingerprint, a.find("out")->fingerprint);

  auto variant = [](const std::string& out_line) {
    return load_ok("sources:\n  gen: {type: generator}\nsinks:\n  out: " + out_line + "\n")
        .find("out")
        ->fingerprint;
  };
  const std::string base = variant("{type: file, inputs: [gen], path: /x}");
  EXPECT_EQ(base, a.find("out")->fingerprint);
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /y}"));
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /x, compress: true}"));
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /x, queue: {max_batches: 8}}"));
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /x, retry: {max_attempts: 3}}"));
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /x, breaker: {open_for: 1s}}"));
  EXPECT_EQ(base, variant("{type: file, inputs: [gen], path: /x, retry: {initial: 100ms}}"));
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /x, spool: false}"));
  EXPECT_NE(base, variant("{type: file, inputs: [gen], path: /x, spool: {replay: backfill}}"));
  EXPECT_EQ(base, variant("{type: file, inputs: [gen], path: /x, spool: {max_size: 1GiB}}"));
  EXPECT_NE(base, variant("{type: stdout, inputs: [gen]}"));
  EXPECT_NE(a.find("gen")->fingerprint,
            load_ok("sources:\n  gen: {type: generator, rate: 11}\n").find("gen")->fingerprint);
}

// A kObjectList's items and their options are addressed as "rules.<index>.<option>", each at the
// position of its value, so that a factory's report about one lands on its line.
TEST(Load, ObjectListItemsAndTheirOptionsHavePositions) {
  Pipeline p = load_ok(yaml(R"(
sources:
  gen: {type: generator}
parsers:
  f:
    type: filter
    inputs: [gen]
    rules:
      - field: title
        every: 1s
      - name: b
        field: n
)"));
  const ComponentConfig& f = *p.find("f");
  Strings paths;
  for (const auto& [path, pos] : f.option_positions) paths.push_back(path);
  EXPECT_EQ(paths, (Strings{"rules", "rules.0", "rules.0.every", "rules.0.field", "rules.1",
                            "rules.1.field", "rules.1.name"}));
  expect_position(f.option_positions.at("rules"), 8, 7);
  expect_position(f.option_positions.at("rules.0"), 8, 9);
  expect_position(f.option_positions.at("rules.0.field"), 8, 16);
  expect_position(f.option_positions.at("rules.0.every"), 9, 16);
  expect_position(f.option_positions.at("rules.1"), 10, 9);
  expect_position(f.option_positions.at("rules.1.name"), 10, 15);
  expect_position(f.option_positions.at("rules.1.field"), 11, 16);
  EXPECT_EQ(f.options.get_object_list("rules")[1].second.get_int("limit"), 10);
}

TEST(Fingerprint, ObjectListItemsCountInOrderWhateverTheirSpelling) {
  auto fingerprint = [](const std::string& rules) {
    return load_ok(
               "sources:\n  gen: {type: generator}\nparsers:\n  f: {type: filter, inputs: "
               "[gen], rules: " +
               rules + "}\n")
        .find("f")
        ->fingerprint;
  };
  const std::string base = fingerprint("[{field: a}, {field: b, limit: 3}]");
  EXPECT_EQ(base, fingerprint("[{field: a, action: drop}, {limit: 3, field: b}]"));
  EXPECT_NE(base, fingerprint("[{field: b, limit: 3}, {field: a}]"));
  EXPECT_NE(base, fingerprint("[{field: a}]"));
  EXPECT_NE(base, fingerprint("[{field: a}, {field: b, limit: 4}]"));
  EXPECT_NE(fingerprint("[]"), fingerprint("[{field: a}]"));
}

TEST(ReadPluginDirs, IsLenient) {
  auto env = fake_env({{"P", "/opt"}});
  EXPECT_EQ(read_plugin_dirs("plugin_dirs: [/a, \"${P}/b\"]\nsources: {}\n", env),
            (Strings{"/a", "/opt/b"}));
  EXPECT_EQ(read_plugin_dirs("plugin_dirs: /a\n", env), Strings{"/a"});
  EXPECT_EQ(read_plugin_dirs("plugin_dirs: [/a]\nsources: {gen: [\n", env), Strings{});
  EXPECT_EQ(read_plugin_dirs("sources: {}\n", env), Strings{});
  EXPECT_EQ(read_plugin_dirs("plugin_dirs: [\"${UNSET}\"]\n", env), Strings{});
  EXPECT_EQ(read_plugin_dirs("plugin_dirs: {a: b}\n", env), Strings{});
  EXPECT_EQ(read_plugin_dirs("- a\n", env), Strings{});
}

TEST(ProcessEnvironment, ReadsTheRealEnvironment) {
  Environment env = process_environment();
  EXPECT_EQ(env("INGESTD_CONFIG_TEST_SURELY_UNSET_VARIABLE"), std::nullopt);
  ASSERT_NE(std::getenv("PATH"), nullptr);
  EXPECT_EQ(env("PATH"), std::string(std::getenv("PATH")));
}

}  // namespace
}  // namespace ingestd::config

namespace ingestd::config {
namespace {

// What a failed load hands back, for the factories to check.
Pipeline load_partial(const std::string& text, std::vector<Error>& errors) {
  testing::TestCatalog catalog;
  Pipeline partial;
  EXPECT_FALSE(load("pipeline.yaml", text, catalog, testing::fake_env(), errors, &partial));
  return partial;
}

// A failed load still hands back what it read, marking which components' own keys and options
// are valid, so that their factories can report in the same pass.
TEST(Load, AFailedLoadMarksTheComponentsThatAreStillCheckable) {
  std::vector<Error> errors;
  Pipeline partial = load_partial(testing::yaml(R"(
sources:
  plays: {type: generator, rate: fast}
parsers:
  events: {type: json, inputs: [plays]}
sinks:
  out: {type: file, inputs: [nowhere], path: /tmp/x}
  bad: {type: nosuch, inputs: [events]}
)"),
                                  errors);
  EXPECT_EQ(errors.size(), 3u);
  std::map<std::string, bool> valid;
  for (const auto& c : partial.components) valid[c.name] = c.valid;
  // An unknown type makes a component uncheckable; a bad option with a default does not (the
  // factory sees the default), nor does a dangling input, since its factory never sees inputs.
  EXPECT_EQ(valid, (std::map<std::string, bool>{
                       {"plays", true}, {"events", true}, {"out", true}, {"bad", false}}));
}

// So that its factory can report in the same pass, a component whose option failed validation
// gets the option's default; one that failed without a default is left out, and a missing or
// failed required option leaves the component unchecked.
TEST(Load, AFailedOptionFallsBackToItsDefaultForTheFactory) {
  std::vector<Error> errors;
  Pipeline partial = load_partial(testing::yaml(R"(
sources:
  plays: {type: generator, rate: 0, format: xml, lines: {a: b}}
  nopath: {type: file}
  badpath: {type: file, path: "${NOPE}"}
sinks:
  out: {type: file, inputs: [plays], path: /tmp/x, rotate_size: 1, rotate_every: soon}
aggregates:
  w: {type: window, inputs: [plays], metrics: {n: count}, window: {size: 0s, time: later}}
)"),
                                  errors);
  EXPECT_EQ(errors.size(), 9u);  // three for plays, one each for the paths, two each for out, w
  std::map<std::string, const ComponentConfig*> by_name;
  for (const auto& c : partial.components) by_name[c.name] = &c;
  ASSERT_EQ(by_name.size(), 5u);
  const ComponentConfig& plays = *by_name["plays"];
  EXPECT_TRUE(plays.valid);
  EXPECT_EQ(plays.options.get_int("rate"), 10);
  EXPECT_EQ(plays.options.get_string("format"), "json");
  EXPECT_EQ(plays.options.get_list("lines"), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(by_name["nopath"]->valid);
  EXPECT_FALSE(by_name["badpath"]->valid);
  const ComponentConfig& out = *by_name["out"];
  EXPECT_TRUE(out.valid);
  EXPECT_EQ(out.options.get_size("rotate_size"), 64u << 20);
  EXPECT_FALSE(out.options.has("rotate_every"));
  // A required object keeps its good children; its failed required child makes it unchecked.
  const ComponentConfig& w = *by_name["w"];
  EXPECT_FALSE(w.valid);
  EXPECT_EQ(w.options.get_object("window").get_string("time"), "processing");
}

// An item that cannot be read is left out of the list (the others keep their index), so that the
// factory can still check the rest in the same pass.
TEST(Load, AFailedObjectListKeepsTheItemsItCouldRead) {
  std::vector<Error> errors;
  Pipeline partial = load_partial(testing::yaml(R"(
sources:
  gen: {type: generator}
parsers:
  f:
    type: filter
    inputs: [gen]
    rules:
      - {field: a, limit: 0}
      - {name: no_field}
      - oops
      - {field: d}
)"),
                                  errors);
  std::vector<std::string> messages;
  for (const Error& e : errors) messages.push_back(e.to_string());
  EXPECT_EQ(messages,
            (Strings{"pipeline.yaml:8:27: parsers.f (filter): rules.0.limit must be >= 1",
                     "pipeline.yaml:9:9: parsers.f (filter): missing required option "
                     "'rules.1.field'",
                     "pipeline.yaml:10:9: parsers.f (filter): rules.2: expected a mapping, got "
                     "'oops'"}));
  ASSERT_EQ(partial.components.size(), 2u);
  const ComponentConfig& f = partial.components[1];
  EXPECT_TRUE(f.valid);
  const auto& rules = f.options.get_object_list("rules");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].first, "0");
  EXPECT_EQ(rules[0].second.get_string("field"), "a");
  EXPECT_EQ(rules[0].second.get_int("limit"), 10);  // the default, as for any failed option
  EXPECT_EQ(rules[1].first, "3");
  EXPECT_EQ(rules[1].second.get_string("field"), "d");
  expect_position(f.option_positions.at("rules.3.field"), 11, 17);
}

TEST(Load, ASuccessfulLoadMarksEveryComponentValid) {
  Pipeline p = load_ok(yaml(kFullPipeline), fake_env({{"STATE", "/run/x"}}));
  for (const auto& c : p.components) EXPECT_TRUE(c.valid) << c.name;
}

}  // namespace
}  // namespace ingestd::config
