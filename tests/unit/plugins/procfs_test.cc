#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"
#include "source/procfs/procfs_parse.h"
#include "source/procfs/procfs_reader.h"
#include "source/procfs/procfs_source.h"

namespace ingestd::plugins {
namespace {

namespace fs = std::filesystem;
using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::CollectingOutput;
using ingestd::testing::FakeContext;
using ingestd::testing::TempDir;

constexpr ComponentDescriptor kDescriptor =
    describe<ProcfsSource>(Kind::kSource, "procfs", kProcfsSourceDoc, kProcfsSourceOptions);

const std::string kFixture = INGESTD_SOURCE_DIR "/tests/fixtures/procfs";
// btime of the fixture's stat, in ms.
constexpr int64_t kBootMs = 1764547200LL * 1000;

double ticks(int64_t n) {
  return static_cast<double>(n) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Options parse_options(const std::string& yaml) {
  return ingestd::testing::options_or_fail(kDescriptor, yaml);
}

// A context that asks to stop at its n-th wait, so that run() takes n samples.
class StopAfterWaits : public FakeContext {
 public:
  explicit StopAfterWaits(int n) : FakeContext("procs"), stop_at_(n) {}
  bool wait_for_stop(int64_t ns) override {
    waits.push_back(ns);
    if (static_cast<int>(waits.size()) == stop_at_) request_stop();
    return FakeContext::wait_for_stop(ns);
  }
  std::vector<int64_t> waits;

 private:
  int stop_at_;
};

// The fields of one event, by key; every key appears once.
struct Fields {
  std::map<std::string, Value> values;
  std::vector<std::string> keys;

  int64_t i(const std::string& key) const { return at(key, Value::Type::kInt).i; }
  double d(const std::string& key) const { return at(key, Value::Type::kDouble).d; }
  std::string s(const std::string& key) const {
    return std::string(at(key, Value::Type::kString).s);
  }
  bool has(const std::string& key) const { return values.count(key) != 0; }
  const Value& at(const std::string& key, Value::Type type) const {
    static const Value kNull;
    auto it = values.find(key);
    if (it == values.end()) {
      ADD_FAILURE() << "no field " << key;
      return kNull;
    }
    EXPECT_EQ(it->second.type, type) << key;
    return it->second;
  }
  size_t count_prefixed(const std::string& prefix) const {
    return static_cast<size_t>(std::count_if(keys.begin(), keys.end(), [&](const std::string& k) {
      return k.compare(0, prefix.size(), prefix) == 0;
    }));
  }
};

std::vector<Fields> events_of(const std::vector<BatchPtr>& batches) {
  std::vector<Fields> out;
  for (const auto& b : batches) {
    for (const Event& e : b->events()) {
      Fields f;
      for (const Field& field : b->fields(e)) {
        EXPECT_TRUE(f.values.emplace(std::string(field.key), field.value).second)
            << "repeated field " << field.key;
        f.keys.emplace_back(field.key);
      }
      EXPECT_TRUE(e.raw.empty());
      EXPECT_EQ(f.values.at("time").i, e.time_ns / 1'000'000);
      out.push_back(std::move(f));
    }
  }
  return out;
}

const Fields* find_pid(const std::vector<Fields>& events, int64_t pid) {
  for (const Fields& f : events)
    if (f.has("pid") && f.i("pid") == pid) return &f;
  return nullptr;
}

std::vector<int64_t> pids_of(const std::vector<Fields>& events) {
  std::vector<int64_t> pids;
  for (const Fields& f : events)
    if (f.s("kind") == "process") pids.push_back(f.i("pid"));
  return pids;
}

int count_logs(const FakeContext& ctx, const std::string& text) {
  return static_cast<int>(std::count_if(ctx.logs.begin(), ctx.logs.end(), [&](const auto& log) {
    return log.second.find(text) != std::string::npos;
  }));
}

// Runs the source on `yaml` for `samples` samples.
struct Sampling {
  explicit Sampling(int samples) : ctx(samples) {}
  StopAfterWaits ctx;
  CollectingOutput out;
  std::vector<Fields> events;

  void run(const std::string& yaml) {
    CollectingDiagnostics diag;
    ProcfsSource source(parse_options(yaml), diag);
    ASSERT_TRUE(diag.errors.empty()) << diag.errors[0].first << ": " << diag.errors[0].second;
    ASSERT_TRUE(source.start(ctx));
    source.run(ctx, out);
    events = events_of(out.batches);
  }
};

// A writable copy of the fixture tree.
struct FixtureCopy {
  TempDir dir;
  fs::path root = dir.path() / "proc";
  FixtureCopy() {
    fs::copy(kFixture, root, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  }
  std::string yaml(const std::string& rest) const {
    return "{root: '" + root.string() + "', " + rest + "}";
  }
};

std::string fixture_yaml(const std::string& rest) {
  return "{root: '" + kFixture + "', " + rest + "}";
}

TEST(ProcfsOptions, DefaultsSampleTheHostOfProcEveryTenSeconds) {
  Options o = parse_options("{}");
  EXPECT_EQ(o.get_duration_ns("interval"), 10'000'000'000);
  EXPECT_TRUE(o.get_bool("host"));
  EXPECT_EQ(o.get_string("root"), "/proc");
  EXPECT_EQ(o.get_string("match_on"), "comm");
  CollectingDiagnostics diag;
  ProcfsSource source(o, diag);
  EXPECT_TRUE(diag.errors.empty());
}

TEST(ProcfsOptions, NothingToSampleIsAnError) {
  CollectingDiagnostics diag;
  ProcfsSource source(parse_options("{host: false}"), diag);
  ASSERT_EQ(diag.errors.size(), 1u);
  EXPECT_EQ(diag.errors[0].first, "host");
  EXPECT_NE(diag.errors[0].second.find("nothing to sample"), std::string::npos);
}

TEST(ProcfsOptions, BadPatternsAndPathsAreReportedOnTheirOptions) {
  struct Case {
    std::string yaml, option, text;
  };
  const Case cases[] = {
      {"{pattern: 'ngin(x'}", "pattern", "not a valid regular expression"},
      {"{pattern: ''}", "pattern", "must not be empty"},
      {"{root: ''}", "root", "must not be empty"},
      {"{pid_file: ['/run/a.pid', '']}", "pid_file", "empty path"},
  };
  for (const Case& c : cases) {
    CollectingDiagnostics diag;
    ProcfsSource source(parse_options(c.yaml), diag);
    ASSERT_EQ(diag.errors.size(), 1u) << c.yaml;
    EXPECT_EQ(diag.errors[0].first, c.option) << c.yaml;
    EXPECT_NE(diag.errors[0].second.find(c.text), std::string::npos) << diag.errors[0].second;
  }
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{interval: 1ms}", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{pid: 0}", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{match_on: args}", errors));
}

TEST(ProcfsSource, HostEventHoldsTheFixtureNumbers) {
  Sampling s(1);
  s.run(fixture_yaml("interval: 1s"));
  ASSERT_EQ(s.events.size(), 1u);
  const Fields& h = s.events[0];
  EXPECT_EQ(h.s("kind"), "host");
  EXPECT_EQ(h.i("time"), s.ctx.clock().now_ns() / 1'000'000);
  EXPECT_EQ(h.s("host"), "fixture-host");
  EXPECT_EQ(h.i("boot_time"), kBootMs);
  EXPECT_EQ(h.i("cpus"), 2);
  EXPECT_DOUBLE_EQ(h.d("cpu_user_seconds"), ticks(123456));
  EXPECT_DOUBLE_EQ(h.d("cpu_nice_seconds"), ticks(789));
  EXPECT_DOUBLE_EQ(h.d("cpu_system_seconds"), ticks(34567));
  EXPECT_DOUBLE_EQ(h.d("cpu_idle_seconds"), ticks(9876543));
  EXPECT_DOUBLE_EQ(h.d("cpu_iowait_seconds"), ticks(2345));
  EXPECT_DOUBLE_EQ(h.d("cpu_irq_seconds"), ticks(0));
  EXPECT_DOUBLE_EQ(h.d("cpu_softirq_seconds"), ticks(678));
  EXPECT_DOUBLE_EQ(h.d("cpu_steal_seconds"), ticks(90));
  EXPECT_EQ(h.i("interrupts"), 4567890);
  EXPECT_EQ(h.i("context_switches"), 98765432);
  EXPECT_EQ(h.i("forks"), 54321);
  EXPECT_EQ(h.i("procs_running"), 3);
  EXPECT_EQ(h.i("procs_blocked"), 1);

  EXPECT_EQ(h.i("mem_total_bytes"), 8039564LL * 1024);
  EXPECT_EQ(h.i("mem_free_bytes"), 512340LL * 1024);
  EXPECT_EQ(h.i("mem_available_bytes"), 4123456LL * 1024);
  EXPECT_EQ(h.i("mem_buffers_bytes"), 234567LL * 1024);
  EXPECT_EQ(h.i("mem_cached_bytes"), 3012345LL * 1024);
  EXPECT_EQ(h.i("mem_dirty_bytes"), 1536LL * 1024);
  EXPECT_EQ(h.i("mem_shared_bytes"), 123456LL * 1024);
  EXPECT_EQ(h.i("swap_total_bytes"), 2097148LL * 1024);
  EXPECT_EQ(h.i("swap_free_bytes"), 2000000LL * 1024);

  EXPECT_DOUBLE_EQ(h.d("load1"), 0.52);
  EXPECT_DOUBLE_EQ(h.d("load5"), 0.58);
  EXPECT_DOUBLE_EQ(h.d("load15"), 0.59);

  EXPECT_EQ(h.i("tcp_active_opens"), 4321);
  EXPECT_EQ(h.i("tcp_passive_opens"), 1234);
  EXPECT_EQ(h.i("tcp_attempt_fails"), 56);
  EXPECT_EQ(h.i("tcp_established_resets"), 78);
  EXPECT_EQ(h.i("tcp_established"), 9);
  EXPECT_EQ(h.i("tcp_in_segments"), 1987654);
  EXPECT_EQ(h.i("tcp_out_segments"), 2012345);
  EXPECT_EQ(h.i("tcp_retransmitted_segments"), 3456);
  EXPECT_EQ(h.i("tcp_in_errors"), 7);
  EXPECT_EQ(h.i("tcp_out_resets"), 890);
  // Udp, not the UdpLite table of the same column names after it.
  EXPECT_EQ(h.i("udp_in_datagrams"), 65432);
  EXPECT_EQ(h.i("udp_no_ports"), 21);
  EXPECT_EQ(h.i("udp_in_errors"), 3);
  EXPECT_EQ(h.i("udp_out_datagrams"), 65000);
  EXPECT_EQ(h.i("udp_receive_buffer_errors"), 2);
  EXPECT_EQ(h.i("udp_send_buffer_errors"), 1);
  EXPECT_EQ(h.i("tcp_syncookies_sent"), 5);
  EXPECT_EQ(h.i("tcp_listen_overflows"), 11);
  EXPECT_EQ(h.i("tcp_listen_drops"), 13);
  EXPECT_EQ(h.i("tcp_timeouts"), 66);
  EXPECT_EQ(h.i("tcp_aborts_on_timeout"), 4);
  EXPECT_EQ(h.i("tcp_backlog_drops"), 2);
  EXPECT_EQ(h.i("tcp_syn_retransmits"), 19);
  EXPECT_EQ(h.i("ip_in_bytes"), 3456789012);
  EXPECT_EQ(h.i("ip_out_bytes"), 2345678901);

  EXPECT_DOUBLE_EQ(h.d("pressure_cpu_some_avg10"), 1.25);
  EXPECT_DOUBLE_EQ(h.d("pressure_cpu_some_avg60"), 0.75);
  EXPECT_DOUBLE_EQ(h.d("pressure_cpu_some_avg300"), 0.50);
  EXPECT_DOUBLE_EQ(h.d("pressure_cpu_some_total_seconds"), 123.456789);
  EXPECT_DOUBLE_EQ(h.d("pressure_cpu_full_total_seconds"), 0);
  EXPECT_DOUBLE_EQ(h.d("pressure_memory_some_avg300"), 0.30);
  EXPECT_DOUBLE_EQ(h.d("pressure_memory_full_avg10"), 0.05);
  EXPECT_DOUBLE_EQ(h.d("pressure_memory_full_total_seconds"), 2.345678);
  EXPECT_DOUBLE_EQ(h.d("pressure_io_some_avg10"), 2.50);
  EXPECT_DOUBLE_EQ(h.d("pressure_io_full_avg60"), 1.00);
  EXPECT_DOUBLE_EQ(h.d("pressure_io_full_total_seconds"), 87.654321);
  EXPECT_EQ(h.count_prefixed("pressure_"), 24u);

  // Nothing else: 3 common, boot_time, cpus, 8 cpu times, 5 counts, 9 memory, 3 load, 25 network.
  EXPECT_EQ(h.keys.size(), 3u + 2 + 8 + 5 + 9 + 3 + 25 + 24);
  EXPECT_EQ(s.ctx.count("events"), 1u);
  EXPECT_EQ(s.ctx.count("unreadable"), 0u);
  EXPECT_EQ(s.ctx.count("malformed"), 0u);
}

TEST(ProcfsSource, ProcessEventsHoldTheFixtureNumbers) {
  Sampling s(1);
  s.run(fixture_yaml("host: false, pattern: '.'"));
  // 999's stat is cut short: skipped and counted, the others sampled.
  EXPECT_EQ(pids_of(s.events), (std::vector<int64_t>{1, 777, 4242}));
  EXPECT_EQ(s.ctx.count("malformed"), 1u);
  EXPECT_EQ(count_logs(s.ctx, "cannot parse"), 1);
  EXPECT_EQ(s.ctx.count("events"), 3u);
  EXPECT_EQ(s.ctx.count("vanished") + s.ctx.count("unreadable") + s.ctx.count("missing"), 0u);

  const Fields* p = find_pid(s.events, 4242);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->s("host"), "fixture-host");
  EXPECT_EQ(p->s("name"), "my (odd) job)");
  EXPECT_EQ(p->s("cmdline"), "/usr/bin/python3 -m job --name odd job");
  EXPECT_EQ(p->s("state"), "R");
  EXPECT_EQ(p->i("ppid"), 1);
  EXPECT_EQ(p->i("uid"), 1000);
  EXPECT_EQ(p->i("start_time"), kBootMs + 123456 * 1000 / sysconf(_SC_CLK_TCK));
  EXPECT_DOUBLE_EQ(p->d("cpu_user_seconds"), ticks(1500));
  EXPECT_DOUBLE_EQ(p->d("cpu_system_seconds"), ticks(250));
  EXPECT_EQ(p->i("minor_faults"), 2048);
  EXPECT_EQ(p->i("major_faults"), 3);
  EXPECT_EQ(p->i("virtual_bytes"), 1073741824);
  EXPECT_EQ(p->i("rss_bytes"), 102400LL * 1024);
  EXPECT_EQ(p->i("threads"), 4);
  EXPECT_EQ(p->i("voluntary_context_switches"), 300);
  EXPECT_EQ(p->i("involuntary_context_switches"), 25);
  EXPECT_EQ(p->i("fds"), 7);
  EXPECT_EQ(p->i("io_read_chars"), 5000);
  EXPECT_EQ(p->i("io_write_chars"), 6000);
  EXPECT_EQ(p->i("io_read_syscalls"), 70);
  EXPECT_EQ(p->i("io_write_syscalls"), 80);
  EXPECT_EQ(p->i("io_read_bytes"), 4096);
  EXPECT_EQ(p->i("io_write_bytes"), 8192);
  EXPECT_EQ(p->keys.size(), 26u);

  const Fields* init = find_pid(s.events, 1);
  ASSERT_NE(init, nullptr);
  EXPECT_EQ(init->s("name"), "systemd");
  EXPECT_EQ(init->s("cmdline"), "/sbin/init splash");
  EXPECT_EQ(init->i("ppid"), 0);
  EXPECT_EQ(init->i("fds"), 5);
  EXPECT_EQ(init->i("rss_bytes"), 12840LL * 1024);
  EXPECT_EQ(init->i("io_read_bytes"), 345678848);
  EXPECT_DOUBLE_EQ(init->d("cpu_user_seconds"), ticks(2345));

  // No io file (a kernel without task I/O accounting): the io fields are left out, uncounted.
  const Fields* nginx = find_pid(s.events, 777);
  ASSERT_NE(nginx, nullptr);
  EXPECT_EQ(nginx->s("cmdline"), "nginx: worker process");
  EXPECT_EQ(nginx->i("fds"), 3);
  EXPECT_EQ(nginx->count_prefixed("io_"), 0u);
  EXPECT_EQ(nginx->keys.size(), 20u);
}

TEST(ProcfsSource, PatternsSearchTheNameOrTheCommandLine) {
  struct Case {
    std::string options;
    std::vector<int64_t> pids;
  };
  const Case cases[] = {
      {"pattern: '^nginx$'", {777}},
      {"pattern: 'job\\)$'", {4242}},  // the name's own parentheses
      {"pattern: 'odd job'", {}},      // not in any name
      {"pattern: 'odd job', match_on: cmdline", {4242}},
      {"pattern: 'worker process', match_on: cmdline", {777}},
      {"pattern: '^/sbin/init splash$', match_on: cmdline", {1}},
      {"pattern: 'ng|sys'", {1, 777}},
  };
  for (const Case& c : cases) {
    Sampling s(1);
    s.run(fixture_yaml("host: false, " + c.options));
    EXPECT_EQ(pids_of(s.events), c.pids) << c.options;
  }
}

TEST(ProcfsSource, PidsAndPidFilesAreSampledOnceEachAndMissingOnesCountedAndLoggedOnce) {
  TempDir tmp;
  std::ofstream(tmp.file("job.pid")) << "4242\n";
  std::ofstream(tmp.file("also-job.pid")) << "4242";
  std::ofstream(tmp.file("stale.pid")) << "31337\n";
  std::ofstream(tmp.file("garbage.pid")) << "not a pid\n";
  Sampling s(3);
  s.run(fixture_yaml("host: false, interval: 1s, pid: 1, pid_file: ['" + tmp.file("job.pid") +
                     "', '" + tmp.file("also-job.pid") + "', '" + tmp.file("stale.pid") + "', '" +
                     tmp.file("garbage.pid") + "', '" + tmp.file("none.pid") + "']"));
  EXPECT_EQ(pids_of(s.events), (std::vector<int64_t>{1, 4242, 1, 4242, 1, 4242}));
  EXPECT_EQ(s.ctx.count("missing"), 9u);  // three files, three samples
  EXPECT_EQ(count_logs(s.ctx, "stale.pid"), 1);
  EXPECT_EQ(count_logs(s.ctx, "garbage.pid"), 1);
  EXPECT_EQ(count_logs(s.ctx, "none.pid"), 1);
}

TEST(ProcfsSource, APidThatDoesNotRunIsMissing) {
  Sampling s(2);
  s.run(fixture_yaml("host: false, pid: 5"));
  EXPECT_TRUE(s.events.empty());
  EXPECT_TRUE(s.out.batches.empty());  // no empty batches
  EXPECT_EQ(s.ctx.count("missing"), 2u);
  EXPECT_EQ(count_logs(s.ctx, "pid 5 is not running"), 1);
}

TEST(ProcfsReader, AProcessThatVanishesAfterSelectionIsSkippedAndCounted) {
  FixtureCopy copy;
  ProcfsSettings settings;
  settings.root = copy.root.string();
  settings.pattern.emplace("^(systemd|nginx|my)");
  ProcfsReader reader(std::move(settings));
  FakeContext ctx;
  ASSERT_TRUE(reader.open(ctx));
  std::vector<int64_t> pids;
  reader.select(ctx, pids);
  ASSERT_EQ(pids, (std::vector<int64_t>{1, 777, 4242}));

  // They exit between the listing and the reading.
  fs::remove_all(copy.root / "777");
  fs::remove_all(copy.root / "4242");
  Batch batch;
  EXPECT_EQ(reader.sample_process(ctx, 1, batch, 0), ProcfsReader::Outcome::kSampled);
  EXPECT_EQ(reader.sample_process(ctx, 777, batch, 0), ProcfsReader::Outcome::kSkipped);
  EXPECT_EQ(reader.sample_process(ctx, 4242, batch, 0), ProcfsReader::Outcome::kSkipped);
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_EQ(ctx.count("vanished"), 2u);
  EXPECT_EQ(ctx.count("unreadable"), 0u);
  EXPECT_EQ(count_logs(ctx, "exited while it was read"), 1);
}

TEST(ProcfsReader, AnEssentialFileMissingFromALiveProcessIsUnreadable) {
  FixtureCopy copy;
  ProcfsSettings settings;
  settings.root = copy.root.string();
  ProcfsReader reader(std::move(settings));
  FakeContext ctx;
  ASSERT_TRUE(reader.open(ctx));
  // The directory is still there, an essential file is not: unreadable, not vanished.
  fs::remove(copy.root / "4242" / "status");
  Batch batch;
  EXPECT_EQ(reader.sample_process(ctx, 4242, batch, 0), ProcfsReader::Outcome::kSkipped);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(ctx.count("unreadable"), 1u);
  EXPECT_EQ(ctx.count("vanished"), 0u);
}

TEST(ProcfsSource, UnreadableFilesAreCountedEveryTimeAndLoggedOnce) {
  FixtureCopy copy;
  // EISDIR stands in for EACCES, which root (the tests may run as root) never sees.
  fs::remove(copy.root / "4242" / "io");
  fs::create_directory(copy.root / "4242" / "io");
  fs::remove(copy.root / "1" / "io");
  fs::create_directory(copy.root / "1" / "io");
  if (geteuid() != 0) fs::permissions(copy.root / "777" / "fd", fs::perms::none);
  Sampling s(3);
  s.run(copy.yaml("host: false, pattern: 'systemd|job|nginx', interval: 1s"));
  ASSERT_EQ(pids_of(s.events), (std::vector<int64_t>{1, 777, 4242, 1, 777, 4242, 1, 777, 4242}));
  const bool as_root = geteuid() == 0;
  EXPECT_EQ(s.ctx.count("unreadable"), as_root ? 6u : 9u);
  EXPECT_EQ(count_logs(s.ctx, "cannot read"), as_root ? 1 : 2);  // one per file and error
  for (const Fields& f : s.events) {
    EXPECT_EQ(f.has("io_read_bytes"), false) << f.i("pid");
    EXPECT_EQ(f.has("fds"), f.i("pid") != 777 || as_root) << f.i("pid");
  }
  if (!as_root) fs::permissions(copy.root / "777" / "fd", fs::perms::owner_all);
}

TEST(ProcfsSource, HostWithoutPressureOrNetworkLeavesThoseFieldsOut) {
  FixtureCopy copy;
  fs::remove_all(copy.root / "pressure");
  fs::remove_all(copy.root / "net");
  Sampling s(1);
  s.run(copy.yaml("interval: 1s"));
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].count_prefixed("pressure_"), 0u);
  EXPECT_EQ(s.events[0].count_prefixed("tcp_"), 0u);
  EXPECT_EQ(s.events[0].i("mem_total_bytes"), 8039564LL * 1024);
  EXPECT_EQ(s.ctx.count("unreadable"), 0u);
  EXPECT_TRUE(s.ctx.logs.empty());
}

TEST(ProcfsSource, SamplesAtOnceThenEveryIntervalAndStopsWhenAsked) {
  Sampling s(4);
  s.run(fixture_yaml("interval: 2500ms, pid: 1"));
  EXPECT_EQ(s.ctx.waits, (std::vector<int64_t>(4, 2'500'000'000)));
  ASSERT_EQ(s.out.batches.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const Batch& b = *s.out.batches[i];
    ASSERT_EQ(b.size(), 2u);  // host and pid 1, in one batch
    EXPECT_EQ(b.origin.component, "procs");
    EXPECT_EQ(b.ingest_time_ns,
              1'700'000'000'000'000'000 + static_cast<int64_t>(i) * 2'500'000'000);
    EXPECT_EQ(b.events()[0].time_ns, b.ingest_time_ns);
    EXPECT_EQ(b.events()[1].time_ns, b.ingest_time_ns);
  }
  EXPECT_EQ(s.ctx.count("events"), 8u);
}

TEST(ProcfsSource, BatchesHoldAtMostMaxEvents) {
  Sampling s(1);
  s.ctx.limits.max_events = 2;
  s.run(fixture_yaml("pattern: '.'"));
  ASSERT_EQ(s.out.batches.size(), 2u);
  EXPECT_EQ(s.out.batches[0]->size(), 2u);
  EXPECT_EQ(s.out.batches[1]->size(), 2u);
  EXPECT_EQ(s.events[0].s("kind"), "host");
}

TEST(ProcfsSource, AMissingRootFailsStart) {
  CollectingDiagnostics diag;
  ProcfsSource source(parse_options("{root: /nonexistent/proc}"), diag);
  FakeContext ctx;
  EXPECT_FALSE(source.start(ctx));
  EXPECT_EQ(count_logs(ctx, "cannot open root /nonexistent/proc"), 1);
}

TEST(ProcfsSource, SamplesItselfFromTheLiveProc) {
  Sampling s(1);
  s.run("{host: true, pid: " + std::to_string(getpid()) + "}");
  ASSERT_EQ(s.events.size(), 2u);
  const Fields* self = find_pid(s.events, getpid());
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->i("ppid"), getppid());
  EXPECT_GE(self->i("threads"), 1);
  EXPECT_GT(self->i("rss_bytes"), 0);
  EXPECT_GE(self->i("fds"), 3);
  EXPECT_GT(s.events[0].i("mem_total_bytes"), 0);
  EXPECT_GE(s.events[0].i("cpus"), 1);
}

TEST(ProcfsParse, StatNamesMayHoldSpacesAndParentheses) {
  PidStat st;
  ASSERT_TRUE(parse_pid_stat(
      "12 (a) b (c)) ) Z 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1 0 0\n", st));
  EXPECT_EQ(st.pid, 12);
  EXPECT_EQ(st.comm, "a) b (c)) ");
  EXPECT_EQ(st.state, "Z");
  EXPECT_EQ(st.ppid, 3);
  EXPECT_EQ(st.minor_faults, 10);
  EXPECT_EQ(st.major_faults, 11);
  EXPECT_EQ(st.utime_ticks, 7);
  EXPECT_EQ(st.stime_ticks, 8);
  EXPECT_EQ(st.start_ticks, 99);
  EXPECT_EQ(st.vsize_bytes, 4096);
}

TEST(ProcfsParse, MalformedStatLinesAreRefused) {
  const std::string full = "12 (x) S 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1";
  PidStat st;
  ASSERT_TRUE(parse_pid_stat(full, st));
  // Cut anywhere before vsize (the last field read), it is refused.
  for (size_t n = 0; n <= full.find(" 4096"); ++n)
    EXPECT_FALSE(parse_pid_stat(full.substr(0, n), st)) << full.substr(0, n);
  std::string with_nul = "12 (x) S 3";
  with_nul += '\0';
  with_nul += " 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1";
  const std::string bad[] = {
      with_nul,
      "",
      "(x) S 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1",
      "abc (x) S 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1",
      "12 x) S 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1",
      "12 (x S 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1",
      "12 (x) SS 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 4096 1",
      "12 (x) S 3 12 12 0 -1 0 1O 0 11 0 7 8 0 0 20 0 1 0 99 4096 1",
      "12 (x) S 3 12 12 0 -1 0 10 0 11 0 7 8 0 0 20 0 1 0 99 99999999999999999999 1",
  };
  for (const std::string& line : bad) EXPECT_FALSE(parse_pid_stat(line, st)) << line;
}

TEST(ProcfsParse, PressureLoadAndNumbers) {
  Pressure p;
  ASSERT_TRUE(parse_pressure("some avg10=1.50 avg60=2.00 avg300=0.01 total=42\n", p));
  EXPECT_TRUE(p.some.present);
  EXPECT_FALSE(p.full.present);
  EXPECT_DOUBLE_EQ(p.some.avg10, 1.5);
  EXPECT_EQ(p.some.total_us, 42);
  Pressure bad;
  EXPECT_FALSE(parse_pressure("some avg10=x avg60=2.00 avg300=0.01 total=42\nnothing\n", bad));
  EXPECT_FALSE(parse_pressure("", bad));

  LoadAvg load;
  EXPECT_TRUE(parse_loadavg("12.50 1.00 0.00 1/2 3\n", load));
  EXPECT_DOUBLE_EQ(load.load1, 12.5);
  EXPECT_FALSE(parse_loadavg("0.1 0.2\n", load));

  int64_t v = 0;
  EXPECT_TRUE(parse_leading_int(" \t 123 kB", v));
  EXPECT_EQ(v, 123);
  EXPECT_TRUE(parse_leading_int("-1", v));
  EXPECT_EQ(v, -1);
  EXPECT_FALSE(parse_leading_int(" kB", v));
  EXPECT_FALSE(parse_leading_int("", v));
}

TEST(ProcfsParse, NetTablesPairNamesWithValuesByPrefix) {
  constexpr FieldMapping kMappings[] = {{"Tcp", "MaxConn", "max"}, {"Udp", "NoPorts", "np"}};
  std::vector<std::pair<std::string, int64_t>> got;
  const size_t n = for_each_mapped_counter(
      "Tcp: RtoMin MaxConn\nTcp: 200 -1\nUdp: NoPorts\nUdpLite: 7\nUdp: NoPorts\nUdp: 9\n",
      kMappings, [&](const FieldMapping& m, int64_t v) { got.emplace_back(m.field, v); });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int64_t>>{{"max", -1}, {"np", 9}}));
}

}  // namespace
}  // namespace ingestd::plugins
