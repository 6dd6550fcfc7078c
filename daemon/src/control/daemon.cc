#include "control/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "control/logging.h"
#include "runtime/runtime.h"
#include "runtime/system_clock.h"

namespace ingestd {
extern const std::string_view kDemoConfig;
}

namespace ingestd::control {

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kAbandonGraceNs = 5 * kSecond;  // after the deadline, for threads to notice

bool read_file(const std::string& path, std::string& text, std::string& error) {
  // An ifstream opens a directory and reads it as empty; say what it is instead.
  if (std::error_code ec; std::filesystem::is_directory(path, ec)) {
    error = "it is a directory, not a file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  return true;
}

void print_errors(const std::vector<config::Error>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  std::fflush(stderr);
}

bool write_stats(const std::string& path, const runtime::Metrics& metrics) {
  if (path.empty()) return true;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << metrics.to_json();
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

void log_summary(const config::Pipeline& pipeline, const runtime::Metrics& metrics) {
  auto snapshot = metrics.snapshot();
  auto value = [&](const std::string& name) -> uint64_t {
    for (const auto& [n, v] : snapshot)
      if (n == name) return v;
    return 0;
  };
  for (const auto& c : pipeline.components) {
    std::string line = fmt::format("{}.{}:", config::section_name(c.kind), c.name);
    if (c.kind != Kind::kSource) line += fmt::format(" in {}", value(c.name + ".events_in"));
    line += fmt::format(" out {}", value(c.name + ".events_out"));
    for (const auto& [n, v] : snapshot) {
      if (v == 0 || n.compare(0, c.name.size() + 1, c.name + ".") != 0) continue;
      std::string_view counter = std::string_view(n).substr(c.name.size() + 1);
      if (counter == "events_in" || counter == "events_out") continue;
      line += fmt::format(", {} {}", counter, v);
    }
    spdlog::info("{}", line);
  }
}

}  // namespace

int load(const Settings& settings, Loaded& loaded) {
  std::string path = settings.config_path.empty() ? "demo.yaml (embedded)" : settings.config_path;
  std::string text;
  if (settings.config_path.empty()) {
    text = std::string(kDemoConfig);
  } else if (std::string error; !read_file(settings.config_path, text, error)) {
    std::fprintf(stderr, "%s: cannot read: %s\n", path.c_str(), error.c_str());
    return kExitConfig;
  }

  auto env = config::process_environment();
  std::vector<std::string> dirs = settings.plugin_dirs;
  for (auto& d : config::read_plugin_dirs(text, env)) dirs.push_back(d);
  for (auto& d : runtime::default_plugin_dirs()) dirs.push_back(d);
  std::vector<std::string> problems;
  loaded.catalog.scan(dirs, problems);
  for (const auto& p : problems) spdlog::warn("plugin {}", p);

  std::vector<config::Error> errors;
  config::Pipeline partial;
  auto pipeline = config::load(path, text, loaded.catalog, env, errors, &partial);
  if (!pipeline) {
    runtime::Graph::check_factories(partial, errors);
    std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) {
      return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
    });
    print_errors(errors);
    return kExitConfig;
  }
  loaded.pipeline = std::move(*pipeline);
  loaded.graph = runtime::Graph::build(loaded.pipeline, loaded.metrics, errors);
  if (!loaded.graph) {
    print_errors(errors);
    return kExitConfig;
  }
  return kExitOk;
}

int validate(const Settings& settings) {
  Loaded loaded;
  int rc = load(settings, loaded);
  // The verdict goes to stdout (errors go to stderr), so that scripts can tell them apart.
  if (rc == kExitOk)
    std::printf(
        "%s: ok (%zu components)\n",
        settings.config_path.empty() ? "demo.yaml (embedded)" : settings.config_path.c_str(),
        loaded.pipeline.components.size());
  return rc;
}

int run(const Settings& settings) {
  // Signals are taken synchronously by this thread; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  // SIGUSR2 is internal: the runtime's last thread sends it so that a finished batch job ends
  // at once rather than at the next tick.
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Loaded loaded;
  if (int rc = load(settings, loaded); rc != kExitOk) return rc;
  set_log_level(settings.log_level.empty() ? loaded.pipeline.log_level : settings.log_level);
  if (settings.config_path.empty())
    spdlog::info("running the embedded demo pipeline (config/demo.yaml); give -c FILE for another");

  runtime::SystemClock clock;
  int rc = kExitOk;
  {
    runtime::Runtime rt(loaded.pipeline, *loaded.graph, loaded.metrics, clock);
    rt.on_finished([main_thread = pthread_self()] { pthread_kill(main_thread, SIGUSR2); });
    if (!rt.start()) {
      rt.abandon();
      rt.wait_for(kAbandonGraceNs);
      return kExitFailure;
    }
    spdlog::info("ingestd {} running {} components from {}", INGESTD_VERSION,
                 loaded.pipeline.components.size(), loaded.pipeline.path);

    int64_t deadline = 0;
    bool abandoned = false;
    while (!rt.finished()) {
      timespec tick{0, 100'000'000};
      int sig = sigtimedwait(&signals, nullptr, &tick);
      int64_t now = clock.monotonic_ns();
      if (sig == SIGTERM || sig == SIGINT) {
        if (!rt.stopping()) {
          spdlog::info("{} received: stopping (draining, at most {:.1f}s)", strsignal(sig),
                       static_cast<double>(loaded.pipeline.shutdown_timeout_ns) / kSecond);
          rt.request_stop();
          deadline = now + loaded.pipeline.shutdown_timeout_ns;
        } else if (!abandoned) {
          spdlog::warn("second {}: stopping now, discarding what is still queued", strsignal(sig));
          rt.abandon();
          abandoned = true;
          deadline = now;
        }
      } else if (sig == SIGHUP) {
        spdlog::warn(
            "SIGHUP received: reload is not supported by this version; the pipeline keeps running");
      } else if (sig == SIGUSR1) {
        spdlog::info("SIGUSR1 received: reopening files");
        rt.reopen();
      }
      if (deadline != 0 && now >= deadline && !abandoned) {
        spdlog::error("shutdown_timeout passed: discarding what is still queued");
        rt.abandon();
        abandoned = true;
      }
      if (abandoned && now >= deadline + kAbandonGraceNs && !rt.finished()) {
        spdlog::error("components did not stop after the shutdown deadline; exiting without them");
        log_summary(loaded.pipeline, loaded.metrics);
        write_stats(settings.stats_file, loaded.metrics);
        std::fflush(nullptr);
        _exit(kExitFailure);
      }
    }
    if (abandoned) rc = kExitFailure;
  }
  spdlog::info("stopped");
  log_summary(loaded.pipeline, loaded.metrics);
  if (!write_stats(settings.stats_file, loaded.metrics)) {
    spdlog::error("cannot write stats file {}", settings.stats_file);
    rc = kExitFailure;
  }
  return rc;
}

}  // namespace ingestd::control
