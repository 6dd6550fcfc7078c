#include "control/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "admin/exposition.h"
#include "admin/process_metrics.h"
#include "admin/server.h"
#include "control/daemon_api.h"
#include "control/dbus_service.h"
#include "control/logging.h"
#include "control/notify.h"
#include "control/status_line.h"
#include "ingestd/json.h"
#include "runtime/runtime.h"
#include "runtime/system_clock.h"

namespace ingestd {
extern const std::string_view kDemoConfig;
}

namespace ingestd::control {

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kAbandonGraceNs = 5 * kSecond;  // at most, before the deadline: for threads
                                                  // to notice that they must give up
constexpr int64_t kTickNs = 100'000'000;
constexpr int64_t kInspectTimeoutNs = 2'000'000'000;  // an aggregator answers within a tick
// After a second SIGTERM/SIGINT: how long the threads have to end once the queues are discarded
// before the process leaves without them.
constexpr int64_t kSecondSignalGraceNs = 300'000'000;
constexpr int64_t kStatusIntervalNs = 5 * kSecond;  // STATUS= refresh

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

void print_errors(const std::vector<std::string>& errors) {
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
  std::fflush(stderr);
}

std::string display_path(const Settings& settings) {
  return settings.config_path.empty() ? "demo.yaml (embedded)" : settings.config_path;
}

// The plugin behind a component, for the graph's fingerprints: a new version replaces it.
std::string plugin_identity(const runtime::PluginCatalog& catalog,
                            const config::ComponentConfig& c) {
  const runtime::LoadedPlugin* p = catalog.provider(c.descriptor);
  if (!p) return "?";
  return fmt::format("{}@{}:{}", p->descriptor->name, p->descriptor->version, p->path);
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

// Settings every component reads through its context: a change replaces them all.
std::string shared_settings(const config::Pipeline& p) {
  return fmt::format("data_dir={};batch={},{},{}", p.data_dir, p.batch.max_events,
                     p.batch.max_bytes, p.batch.linger_ns);
}

// The sum of every counter whose name ends in `suffix`.
uint64_t sum_counters(const runtime::Metrics& metrics, std::string_view suffix) {
  uint64_t total = 0;
  for (const auto& [name, value] : metrics.snapshot())
    if (std::string_view(name).ends_with(suffix)) total += value;
  return total;
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

// What the admin server is to do: from admin: in the config, or --admin-listen. False with the
// reason when it cannot (a bad override, a token file that cannot be read).
bool admin_options(const config::AdminConfig& config, const std::string& override, bool& enabled,
                   admin::ServerOptions& options, std::string& error) {
  enabled = config.enabled;
  std::string listen = config.listen;
  if (!override.empty()) {
    enabled = override != "off";
    listen = override;
  }
  if (!enabled) return true;
  if (!config::parse_listen(listen, options.host, options.port, error)) {
    error = fmt::format("admin: listen '{}': {}", listen, error);
    return false;
  }
  if (config.token_file.empty()) {
    if (!config::is_loopback(options.host)) {
      error = fmt::format(
          "admin: listen '{}' is not a loopback address: set admin.token_file in the config",
          listen);
      return false;
    }
    options.token.clear();
    return true;
  }
  std::string token;
  if (std::string why; !read_file(config.token_file, token, why)) {
    error = fmt::format("admin: cannot read token_file {}: {}", config.token_file, why);
    return false;
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front())))
    token.erase(0, 1);
  if (token.empty()) {
    error = fmt::format("admin: token_file {} is empty", config.token_file);
    return false;
  }
  options.token = std::move(token);
  return true;
}

}  // namespace

bool load(const Settings& settings, runtime::Metrics& metrics, Loaded& loaded,
          std::vector<std::string>& errors) {
  std::string path = display_path(settings);
  std::string text;
  if (settings.config_path.empty()) {
    text = std::string(kDemoConfig);
  } else if (std::string error; !read_file(settings.config_path, text, error)) {
    errors.push_back(fmt::format("{}: cannot read: {}", path, error));
    return false;
  }

  auto generation = std::make_shared<runtime::Generation>();
  auto env = config::process_environment();
  std::vector<std::string> dirs = settings.plugin_dirs;
  for (auto& d : config::read_plugin_dirs(text, env)) dirs.push_back(d);
  for (auto& d : runtime::default_plugin_dirs()) dirs.push_back(d);
  std::vector<std::string> problems;
  generation->catalog.scan(dirs, problems);
  for (const auto& p : problems) spdlog::warn("plugin {}", p);

  std::vector<config::Error> found;
  config::Pipeline partial;
  auto pipeline = config::load(path, text, generation->catalog, env, found, &partial);
  if (pipeline) {
    generation->pipeline = std::move(*pipeline);
    loaded.components = runtime::Components::build(generation->pipeline, metrics, found);
  } else {
    runtime::Components::check_factories(partial, found);
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
    });
  }
  for (const auto& e : found) errors.push_back(e.to_string());
  if (!pipeline || !loaded.components) return false;
  const auto& catalog = generation->catalog;
  std::string shared = shared_settings(generation->pipeline);
  loaded.model = graph::Model::from(generation->pipeline, [&](const config::ComponentConfig& c) {
    return fmt::format("{};{}", plugin_identity(catalog, c), shared);
  });
  loaded.generation = std::move(generation);
  return true;
}

int validate(const Settings& settings) {
  runtime::Metrics metrics;
  Loaded loaded;
  std::vector<std::string> errors;
  if (!load(settings, metrics, loaded, errors)) {
    print_errors(errors);
    return kExitConfig;
  }
  // The verdict goes to stdout (errors go to stderr), so that scripts can tell them apart.
  std::printf("%s: ok (%zu components)\n", display_path(settings).c_str(),
              loaded.generation->pipeline.components.size());
  return kExitOk;
}

namespace {

// The daemon while it runs: the runtime, the current configuration, reloads and the status the
// control plane reads.
//
// Threads: the main thread runs run(), takes signals and performs every reload; DaemonApi calls
// come from front-end threads (D-Bus). reload() queues a request and waits for the main thread to
// serve it; requests that wait together share one reload, and one asked for during a reload is
// served by the next, so a burst of SIGHUPs and calls collapses into at most one more reload.
class Daemon final : public DaemonApi {
 public:
  explicit Daemon(const Settings& settings) : settings_(settings) {}

  int run();

  ReloadReport reload() override;
  std::vector<std::string> validate(const std::string& path) override;
  std::string status_json() override;
  std::string aggregates_json(const std::string& component,
                              const Aggregator::InspectQuery& query) override;
  std::vector<runtime::Family> metric_families() override;
  Health health() override;
  bool set_log_level(const std::string& level) override;
  std::string state() const override;
  std::string config_path() const override { return display_path(settings_); }
  ReloadReport last_reload() const override;

 private:
  ReloadReport do_reload();
  void serve_reloads(bool sighup);
  void set_state(const char* state);
  void update_status(int64_t now);
  // Starts the admin server for `config` (or --admin-listen) on the runtime's io_context; false
  // with the reason when it cannot. Replaces a running one only once the new one listens.
  bool start_admin(const config::AdminConfig& config, std::string& error);

  const Settings& settings_;
  runtime::SystemClock clock_;
  const int64_t started_ns_ = clock_.monotonic_ns();
  runtime::Metrics metrics_;
  std::unique_ptr<runtime::Runtime> runtime_;
  pthread_t main_thread_ = pthread_self();
  Notifier notifier_;  // main thread only
  StatusLine status_line_;
  int64_t next_status_ns_ = 0;

  mutable std::mutex mu_;  // guards the members below
  const char* state_ = "starting";
  std::shared_ptr<runtime::Generation> generation_;
  graph::Model model_;
  ReloadReport last_reload_;
  std::string log_level_;  // from the config, as last applied
  std::deque<std::shared_ptr<std::promise<ReloadReport>>> waiting_;
  std::string admin_address_;  // "" while it has none
  int64_t unhealthy_after_ns_ = 60'000'000'000;

  // Null when off. Declared after what its threads call; reset explicitly before the runtime,
  // whose io_context it runs on.
  std::unique_ptr<admin::Server> admin_;

  // Null without D-Bus. Last, so that it goes first: its threads call the members above.
  std::unique_ptr<DbusService> bus_;
  std::atomic<DbusService*> bus_signals_{nullptr};  // bus_ for the runtime's threads, while set
};

ReloadReport Daemon::reload() {
  auto request = std::make_shared<std::promise<ReloadReport>>();
  auto result = request->get_future();
  {
    std::lock_guard lock(mu_);
    if (std::string_view(state_) == "stopping") {
      ReloadReport refused;
      refused.message = "the daemon is stopping";
      return refused;
    }
    waiting_.push_back(request);
  }
  pthread_kill(main_thread_, SIGUSR2);
  return result.get();
}

std::vector<std::string> Daemon::validate(const std::string& path) {
  Settings settings = settings_;
  settings.config_path = path;
  runtime::Metrics scratch;
  Loaded loaded;
  std::vector<std::string> errors;
  if (path.empty())
    errors.push_back("no file given");
  else
    load(settings, scratch, loaded, errors);
  return errors;
}

bool Daemon::set_log_level(const std::string& level) {
  if (!control::set_log_level(level)) return false;
  spdlog::info("log level set to {}", level);
  return true;
}

std::string Daemon::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void Daemon::set_state(const char* state) {
  {
    std::lock_guard lock(mu_);
    state_ = state;
  }
  if (bus_) bus_->refresh();
}

// STATUS= for systemctl status, every few seconds.
void Daemon::update_status(int64_t now) {
  if (now < next_status_ns_) return;
  next_status_ns_ = now + kStatusIntervalNs;
  ReloadReport last = last_reload();
  std::string reload = last.finished_realtime_ns == 0 ? "none" : last.ok ? "ok" : "failed";
  notifier_.status(
      status_line_.update(state(), generation_->pipeline, metrics_.snapshot(), now, reload));
}

ReloadReport Daemon::last_reload() const {
  std::lock_guard lock(mu_);
  return last_reload_;
}

std::string Daemon::aggregates_json(const std::string& component,
                                    const Aggregator::InspectQuery& query) {
  using Status = runtime::Runtime::Inspection::Status;
  if (!runtime_) throw std::runtime_error("the pipeline is not running yet");
  runtime::Runtime::Inspection seen = runtime_->inspect(component, query, kInspectTimeoutNs);
  switch (seen.status) {
    case Status::kOk:
      break;
    case Status::kNoSuchAggregator:
      throw NoSuchAggregator(fmt::format("no aggregator named '{}' is running", component));
    case Status::kNotSupported:
      throw NoSuchAggregator(fmt::format("aggregator '{}' has no live state to show", component));
    case Status::kNoAnswer:
      throw std::runtime_error(
          fmt::format("aggregator '{}' did not answer (stopping, or stuck in a call)", component));
    case Status::kFailed:
      throw std::runtime_error(fmt::format("aggregator '{}': {}", component, seen.error));
  }
  std::string out = "[";
  for (const Event& e : seen.rows->events()) {
    if (out.size() > 1) out += ',';
    json::append_fields(out, *seen.rows, e);
  }
  out += ']';
  return out;
}

std::string Daemon::status_json() {
  std::shared_ptr<runtime::Generation> generation;
  ReloadReport last;
  std::string state;
  std::string admin_address;
  int64_t stall_limit;
  {
    std::lock_guard lock(mu_);
    generation = generation_;
    last = last_reload_;
    state = state_;
    admin_address = admin_address_;
    stall_limit = unhealthy_after_ns_;
  }
  const int64_t mono = clock_.monotonic_ns();
  std::string out = "{\"state\":";
  json::append_string(out, state);
  out += ",\"version\":";
  json::append_string(out, INGESTD_VERSION);
  out += ",\"config_path\":";
  json::append_string(out, config_path());
  out += ",\"log_level\":";
  json::append_string(out, log_level());
  out += fmt::format(",\"pid\":{},\"uptime_seconds\":{:.3f},\"admin\":", getpid(),
                     static_cast<double>(mono - started_ns_) / 1e9);
  if (admin_address.empty()) {
    out += "null";
  } else {
    out += "{\"listen\":";
    json::append_string(out, admin_address);
    out += '}';
  }
  out += ",\"components\":[";
  std::vector<runtime::Runtime::SinkState> sinks;
  std::vector<runtime::Runtime::QueueState> queues;
  std::vector<std::string> running, stalled;
  if (runtime_) {
    sinks = runtime_->sinks();
    queues = runtime_->queues();
    running = runtime_->components();
    stalled = runtime_->stalled(stall_limit);
  }
  auto has = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  // Named counters are "<component>.<counter>" (component names have no dots), sorted by name.
  const auto counters = metrics_.snapshot();
  if (generation) {
    bool first = true;
    for (const auto& c : generation->pipeline.components) {
      out += first ? "{" : ",{";
      first = false;
      out += "\"name\":";
      json::append_string(out, c.name);
      out += ",\"kind\":";
      json::append_string(out, config::kind_name(c.kind));
      out += ",\"type\":";
      json::append_string(out, c.type);
      out += ",\"inputs\":[";
      for (size_t i = 0; i < c.inputs.size(); ++i) {
        if (i) out += ',';
        json::append_string(out, c.inputs[i]);
      }
      out += ']';
      for (const auto& sink : sinks) {
        if (sink.name != c.name) continue;
        out += ",\"breaker\":";
        json::append_string(out, sink.breaker);
        out += fmt::format(",\"breaker_not_closed_seconds\":{:.3f}",
                           sink.not_closed_since_ns == 0
                               ? 0.0
                               : static_cast<double>(mono - sink.not_closed_since_ns) / 1e9);
        if (sink.spooling)
          out += fmt::format(
              ",\"spool_events\":{},\"spool_bytes\":{},\"spool_records\":{},"
              "\"spool_oldest_realtime_ns\":{}",
              sink.spool_events, sink.spool_bytes, sink.spool_records, sink.spool_oldest_ns);
      }
      if (c.kind != Kind::kSource)
        out += fmt::format(",\"events_in\":{}", metrics_.counter(c.name + ".events_in").value());
      out += fmt::format(",\"events_out\":{}", metrics_.counter(c.name + ".events_out").value());
      out += ",\"state\":\"";
      out += has(stalled, c.name) ? "stalled" : has(running, c.name) ? "running" : "stopped";
      out += '"';
      for (const auto& q : queues) {
        if (q.name != c.name) continue;
        out += fmt::format(
            ",\"queue\":{{\"batches\":{},\"max_batches\":{},\"bytes\":{},\"max_bytes\":{}}}",
            q.batches, q.max_batches, q.bytes, q.max_bytes);
      }
      out += ",\"counters\":{";
      const std::string prefix = c.name + ".";
      bool first_counter = true;
      for (auto it = std::lower_bound(counters.begin(), counters.end(),
                                      std::make_pair(prefix, uint64_t{0}));
           it != counters.end() && it->first.starts_with(prefix); ++it) {
        if (!first_counter) out += ',';
        first_counter = false;
        json::append_string(out, std::string_view(it->first).substr(prefix.size()));
        out += fmt::format(":{}", it->second);
      }
      out += "}}";
    }
  }
  out += "],\"last_reload\":";
  out += last.to_json();
  out += '}';
  return out;
}

std::vector<runtime::Family> Daemon::metric_families() {
  std::vector<runtime::Family> out = admin::counter_families(metrics_.snapshot());
  for (auto& f : metrics_.collect()) out.push_back(std::move(f));
  using runtime::MetricType;
  auto gauge = [&](const char* name, const char* help, runtime::Labels labels, double value) {
    runtime::Family& f = out.emplace_back();
    f.name = name;
    f.help = help;
    f.type = MetricType::kGauge;
    f.samples.push_back({std::move(labels), value, {}});
  };
  gauge("ingestd_build_info", "The running build (value 1).", {{"version", INGESTD_VERSION}}, 1);
  gauge("ingestd_uptime_seconds", "Seconds since the daemon started.", {},
        static_cast<double>(clock_.monotonic_ns() - started_ns_) / 1e9);
  std::string now = state();
  runtime::Family& states = out.emplace_back();
  states.name = "ingestd_state";
  states.help = "The daemon's state: 1 for the one it is in, 0 for the others.";
  for (const char* s : {"starting", "running", "reloading", "stopping"})
    states.samples.push_back({{{"state", s}}, now == s ? 1.0 : 0.0, {}});
  ReloadReport last = last_reload();
  if (last.finished_realtime_ns != 0) {
    gauge("ingestd_last_reload_timestamp_seconds", "When the last reload finished (Unix time).", {},
          static_cast<double>(last.finished_realtime_ns) / 1e9);
    gauge("ingestd_last_reload_success", "Whether the last reload succeeded (1) or not (0).", {},
          last.ok ? 1 : 0);
  }
  admin::append_process_families(out);
  return out;
}

DaemonApi::Health Daemon::health() {
  Health h;
  std::string now = state();
  if (now == "starting" || now == "stopping") {
    h.reason = now;
    return h;
  }
  int64_t limit;
  {
    std::lock_guard lock(mu_);
    limit = unhealthy_after_ns_;
  }
  std::vector<runtime::Runtime::SinkState> sinks;
  if (runtime_) sinks = runtime_->sinks();
  const int64_t mono = clock_.monotonic_ns();
  std::vector<std::string> why;
  for (const auto& s : sinks) {
    if (s.not_closed_since_ns == 0 || mono - s.not_closed_since_ns <= limit) continue;
    why.push_back(fmt::format(
        "sink {}: circuit breaker {} for {:.1f}s (unhealthy after {:.1f}s)", s.name, s.breaker,
        static_cast<double>(mono - s.not_closed_since_ns) / 1e9, static_cast<double>(limit) / 1e9));
  }
  if (!why.empty()) {
    h.reason = fmt::format("{}", fmt::join(why, "; "));
    return h;
  }
  h.ok = true;
  h.reason = now;
  return h;
}

bool Daemon::start_admin(const config::AdminConfig& config, std::string& error) {
  bool enabled = false;
  admin::ServerOptions options;
  if (!admin_options(config, settings_.admin_listen, enabled, options, error)) return false;
  {
    std::lock_guard lock(mu_);
    unhealthy_after_ns_ = config.unhealthy_after_ns;
  }
  // The old server goes first: the new one may want its port.
  admin_.reset();
  {
    std::lock_guard lock(mu_);
    admin_address_.clear();
  }
  if (!enabled) {
    spdlog::info("admin API off");
    return true;
  }
  admin_ = admin::Server::start(runtime_->io(), *this, options, error);
  if (!admin_) return false;
  std::string address = admin_->address();
  spdlog::info("admin API listening on http://{}{}", address,
               options.token.empty() ? "" : " (bearer token required)");
  std::lock_guard lock(mu_);
  admin_address_ = address;
  return true;
}

ReloadReport Daemon::do_reload() {
  ReloadReport report;
  std::string path = display_path(settings_);
  spdlog::info("reloading {}", path);
  int64_t began = clock_.monotonic_ns();
  Loaded next;
  std::vector<std::string> errors;
  if (!load(settings_, metrics_, next, errors)) {
    report.errors = errors;
    report.message = fmt::format("reload of {} refused, the running pipeline is unchanged: {}",
                                 path, errors.empty() ? "unknown error" : errors.front());
    if (errors.size() > 1) report.message += fmt::format(" (and {} more)", errors.size() - 1);
    spdlog::error("reload of {} refused ({} error{}); the running pipeline is unchanged", path,
                  errors.size(), errors.size() == 1 ? "" : "s");
    for (const auto& e : errors) spdlog::error("{}", e);
  } else {
    graph::Diff diff;
    {
      std::lock_guard lock(mu_);
      diff = graph::diff(model_, next.model);
    }
    const config::Pipeline& now = generation_->pipeline;
    const config::Pipeline& then = next.generation->pipeline;
    if (then.io_threads != now.io_threads)
      spdlog::warn("io_threads changed from {} to {}: it takes effect at the next start",
                   now.io_threads, then.io_threads);
    if (then.log_target != now.log_target)
      spdlog::warn("log.target changed from {} to {}: it takes effect at the next start",
                   now.log_target, then.log_target);
    std::string error;
    if (!runtime_->apply(next.generation, next.model, diff, std::move(next.components), error)) {
      report.errors.push_back(error);
      report.message =
          fmt::format("reload of {} failed, the running pipeline is unchanged: {}", path, error);
      spdlog::error("{}", report.message);
    } else {
      report.ok = true;
      report.kept = diff.kept;
      report.replaced = diff.replaced;
      report.added = diff.added;
      report.removed = diff.removed;
      report.message = fmt::format("reloaded {}: {} (in {} ms)", path, diff.summary(),
                                   (clock_.monotonic_ns() - began) / 1'000'000);
      metrics_.counter("ingestd_reloads", {{"result", "ok"}}).add();
      if (then.admin != now.admin) {
        if (!settings_.admin_listen.empty()) {
          spdlog::warn(
              "admin: changed in the config; --admin-listen {} still decides where it "
              "listens",
              settings_.admin_listen);
        }
        std::string admin_error;
        if (!start_admin(then.admin, admin_error))
          spdlog::error("{}; the admin API stays off until the next successful reload",
                        admin_error);
      }
      if (settings_.log_level.empty() && then.log_level != log_level_) {
        control::set_log_level(then.log_level);
        log_level_ = then.log_level;
      }
      std::lock_guard lock(mu_);
      generation_ = next.generation;
      model_ = std::move(next.model);
    }
  }
  report.finished_realtime_ns = clock_.now_ns();
  if (report.ok) spdlog::info("{}", report.message);
  if (!report.ok) metrics_.counter("ingestd_reloads", {{"result", "failed"}}).add();
  std::lock_guard lock(mu_);
  last_reload_ = report;
  return report;
}

void Daemon::serve_reloads(bool sighup) {
  std::deque<std::shared_ptr<std::promise<ReloadReport>>> served;
  {
    std::lock_guard lock(mu_);
    served.swap(waiting_);
  }
  if (!sighup && served.empty()) return;
  notifier_.reloading();
  set_state("reloading");
  ReloadReport report = do_reload();
  set_state("running");
  notifier_.ready();
  if (bus_) bus_->reloaded(report);
  for (auto& request : served) request->set_value(report);
}

int Daemon::run() {
  // Signals are taken synchronously by this thread; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  // SIGUSR2 is internal: it wakes this thread when the runtime's last thread ends (a finished
  // batch job) and when a front end asks for a reload.
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  main_thread_ = pthread_self();

  Loaded loaded;
  std::vector<std::string> errors;
  if (!load(settings_, metrics_, loaded, errors)) {
    print_errors(errors);
    return kExitConfig;
  }
  const config::Pipeline& pipeline = loaded.generation->pipeline;
  // Before any other thread runs: the logger is replaced, not shared.
  if (auto target = parse_log_target(pipeline.log_target);
      target && *target != LogTarget::kAuto && *target != log_target())
    init_logging(*target);
  log_level_ = pipeline.log_level;
  control::set_log_level(settings_.log_level.empty() ? pipeline.log_level : settings_.log_level);
  set_log_pipeline(pipeline.path);
  if (settings_.config_path.empty())
    spdlog::info("running the embedded demo pipeline (config/demo.yaml); give -c FILE for another");
  {
    std::lock_guard lock(mu_);
    generation_ = loaded.generation;
    model_ = loaded.model;
  }

  int rc = kExitOk;
  runtime_ = std::make_unique<runtime::Runtime>(metrics_, clock_);
  runtime_->on_finished([main_thread = main_thread_] { pthread_kill(main_thread, SIGUSR2); });
  runtime_->on_breaker_changed([this](const std::string& sink, const std::string& state) {
    if (DbusService* bus = bus_signals_.load(std::memory_order_acquire))
      bus->breaker_changed(sink, state);
  });
  metrics_.describe("ingestd_reloads", runtime::MetricType::kCounter,
                    "Reloads, by result (ok, failed).");
  metrics_.counter("ingestd_reloads", {{"result", "ok"}});
  metrics_.counter("ingestd_reloads", {{"result", "failed"}});
  const int collector = metrics_.add_collector([this](std::vector<runtime::Family>& out) {
    if (runtime_) runtime_->collect(out);
  });
  // Before the pipeline starts: a port in use is a start error, and /health says "starting".
  if (std::string error; !start_admin(pipeline.admin, error)) {
    spdlog::error("{}", error);
    metrics_.remove_collector(collector);
    return kExitFailure;
  }
  if (!runtime_->start(loaded.generation, loaded.model, std::move(loaded.components))) {
    admin_.reset();
    metrics_.remove_collector(collector);
    runtime_->abandon();
    runtime_->wait_for(kAbandonGraceNs);
    return kExitFailure;
  }
  // Running before the bus name is claimed: a caller that sees the name never reads "starting".
  set_state("running");
  // On the bus once there is a pipeline to serve: no request can wait on a start that fails.
  bus_ = DbusService::start(settings_.bus, *this);
  bus_signals_.store(bus_.get(), std::memory_order_release);
  spdlog::info("ingestd {} running {} components from {}", INGESTD_VERSION,
               pipeline.components.size(), pipeline.path);
  notifier_.ready();
  // The watchdog stops petting once a component has been inside one plugin call for half the
  // watchdog interval: systemd then restarts a wedged daemon within about 1.5 intervals.
  notifier_.set_health_check([this, limit = notifier_.watchdog_interval_ns() / 2] {
    auto stalled = runtime_->stalled(limit);
    if (stalled.empty()) return std::string();
    return fmt::format("{} stuck inside one call for more than {:.1f}s", fmt::join(stalled, ", "),
                       static_cast<double>(limit) / kSecond);
  });

  // Shutdown: at `abandon_at` what is still queued is discarded so that the threads end; at
  // `exit_at` the process leaves without them. Both stay within shutdown_timeout.
  int64_t abandon_at = 0;
  int64_t exit_at = 0;
  bool abandoned = false;
  while (!runtime_->finished()) {
    timespec tick{0, kTickNs};
    int sig = sigtimedwait(&signals, nullptr, &tick);
    int64_t now = clock_.monotonic_ns();
    notifier_.tick(now);
    update_status(now);
    bool sighup = false;
    if (sig == SIGTERM || sig == SIGINT) {
      if (!runtime_->stopping()) {
        notifier_.stopping();
        int64_t timeout = generation_->pipeline.shutdown_timeout_ns;
        spdlog::info("{} received: stopping (draining, at most {:.1f}s)", strsignal(sig),
                     static_cast<double>(timeout) / kSecond);
        set_state("stopping");
        runtime_->request_stop();
        exit_at = now + timeout;
        abandon_at = exit_at - std::min(kAbandonGraceNs, timeout / 4);
      } else if (!abandoned) {
        spdlog::warn("second {}: stopping now, discarding what is still queued", strsignal(sig));
        abandon_at = now;
        exit_at = std::min(exit_at, now + kSecondSignalGraceNs);
      }
    } else if (sig == SIGHUP) {
      spdlog::info("SIGHUP received: reloading");
      sighup = true;
    } else if (sig == SIGUSR1) {
      spdlog::info("SIGUSR1 received: reopening files");
      runtime_->reopen();
    }
    if (!runtime_->stopping()) serve_reloads(sighup);
    if (abandon_at != 0 && now >= abandon_at && !abandoned) {
      if (sig != SIGTERM && sig != SIGINT)
        spdlog::error("shutdown_timeout is nearly over: discarding what is still queued");
      runtime_->abandon();
      abandoned = true;
    }
    if (abandoned && now >= exit_at && !runtime_->finished()) {
      uint64_t held = runtime_->count_in_flight();
      spdlog::error(
          "components did not stop in time; exiting without them ({} events still "
          "inside a write or a parse, counted as shutdown_dropped)",
          held);
      log_summary(generation_->pipeline, metrics_);
      write_stats(settings_.stats_file, metrics_);
      std::fflush(nullptr);
      _exit(kExitFailure);
    }
  }
  if (abandoned) rc = kExitFailure;
  {
    std::lock_guard lock(mu_);
    state_ = "stopping";
    for (auto& request : waiting_) {
      ReloadReport refused;
      refused.message = "the daemon is stopping";
      request->set_value(refused);
    }
    waiting_.clear();
  }
  notifier_.stopping();  // also when a batch job ended by itself
  bus_signals_.store(nullptr, std::memory_order_release);
  bus_.reset();  // every reload() has been answered
  admin_.reset();
  metrics_.remove_collector(collector);
  runtime_.reset();
  spdlog::info("stopped");
  log_summary(generation_->pipeline, metrics_);
  if (uint64_t lost = sum_counters(metrics_, ".dead_letter_lost"); lost > 0) {
    spdlog::error(
        "{} records meant for a dead-letter file could not be stored and are lost (see "
        "the errors above)",
        lost);
    rc = kExitFailure;
  }
  if (!write_stats(settings_.stats_file, metrics_)) {
    spdlog::error("cannot write stats file {}", settings_.stats_file);
    rc = kExitFailure;
  }
  return rc;
}

}  // namespace

int run(const Settings& settings) {
  Daemon daemon(settings);
  return daemon.run();
}

}  // namespace ingestd::control
