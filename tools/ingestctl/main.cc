// ingestctl: controls a running ingestd over D-Bus (and nothing else), so that it needs no
// privileges of its own beyond what the bus policy grants its caller.
//
//   ingestctl [--bus system|session|ADDRESS] [--json] reload | status | validate FILE |
//             log-level LEVEL | aggregates NAME [--where FIELD=TEXT]... |
//             top [--interval SECONDS] [--once]
//
// Exit codes: 0 success; 1 a failed reload or an invalid file; 64 usage error (also an unknown
// log level); 69 (EX_UNAVAILABLE) the daemon cannot be reached on that bus; 77 (EX_NOPERM) the
// bus policy refused the call.

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>
#include <simdjson.h>
#include <CLI/CLI.hpp>

#include "control/dbus_names.h"
#include "ingestd/json.h"
#include "top.h"

namespace {

namespace dbus = ingestd::control::dbus;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;   // EX_UNAVAILABLE
constexpr int kExitNoPermission = 77;  // EX_NOPERM

// Long enough for a reload that drains a busy pipeline (bounded by its shutdown_timeout).
constexpr auto kCallTimeout = std::chrono::minutes(5);
// GetStatus for `top`: a daemon that does not answer within this is reported, not waited for.
constexpr auto kTopCallTimeout = std::chrono::seconds(10);

// `top`'s live view ends on q, Ctrl-C (SIGINT), SIGTERM or SIGHUP: the handler records the signal
// and wakes the wait through a pipe, so that the terminal is restored by the main thread.
volatile sig_atomic_t g_stop_signal = 0;
int g_wake_fd = -1;

void on_stop_signal(int sig) {
  g_stop_signal = sig;
  if (g_wake_fd >= 0) {
    char c = 0;
    [[maybe_unused]] ssize_t n = write(g_wake_fd, &c, 1);
  }
}

// The terminal's columns and rows; 80 x 24 when stdout is not one (COLUMNS if set).
std::pair<int, int> terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return {ws.ws_col, ws.ws_row > 0 ? ws.ws_row : 24};
  if (const char* columns = std::getenv("COLUMNS"); columns && std::atoi(columns) > 0)
    return {std::atoi(columns), 24};
  return {80, 24};
}

// The live view's hold on the terminal: the alternate screen with the cursor hidden, and stdin
// (when it is a terminal) unbuffered without echo so that q works alone; Ctrl-C still signals.
// The destructor gives back what the constructor took, also when an exception unwinds past it.
class LiveScreen {
 public:
  LiveScreen() {
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      keys_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);
    std::fflush(stdout);
  }
  ~LiveScreen() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (keys_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  LiveScreen(const LiveScreen&) = delete;
  LiveScreen& operator=(const LiveScreen&) = delete;

  // Cursor home, each line cleared to its end, the rest of the screen cleared; at most `rows`
  // lines, the last without a newline, so that the screen never scrolls.
  static void draw(const std::vector<std::string>& lines, int rows) {
    std::string out = "\x1b[H";
    size_t n = std::min(lines.size(), static_cast<size_t>(std::max(rows, 1)));
    for (size_t i = 0; i < n; ++i) {
      out += lines[i];
      out += "\x1b[K";
      if (i + 1 < n) out += '\n';
    }
    out += "\x1b[J";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

  // Waits up to `seconds`; false when the view should end (q typed, or a stop signal).
  bool wait(double seconds, int wake_fd) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (g_stop_signal == 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return true;
      pollfd fds[2] = {{wake_fd, POLLIN, 0}, {keys_ ? STDIN_FILENO : -1, POLLIN, 0}};
      if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;  // timeout, or EINTR
      if (fds[1].revents & POLLIN) {
        char key = 0;
        if (read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' || key == 'Q')) return false;
      }
    }
    return false;
  }

 private:
  termios saved_{};
  bool keys_ = false;
};

struct Options {
  std::string bus = "system";
  bool json = false;
};

// A failed call, as the exit code and the one line that says why.
struct Failure {
  int code;
  std::string message;
};

Failure classify(const sdbus::Error& e, const std::string& bus) {
  const std::string& name = e.getName();
  if (name == "org.freedesktop.DBus.Error.AccessDenied")
    return {kExitNoPermission, fmt::format("permission denied by the policy of {}: {} (the "
                                           "changing calls and GetAggregates need root)",
                                           dbus::describe_bus(bus), e.getMessage())};
  if (name == dbus::kErrorInvalidLevel || name == dbus::kErrorInvalidArgument)
    return {kExitUsage, e.getMessage()};
  if (name.rfind("org.ingestd.", 0) == 0) return {kExitFailed, e.getMessage()};
  // ServiceUnknown, NameHasNoOwner, NoReply, Disconnected, and connection errors (ENOENT...).
  return {kExitUnavailable,
          fmt::format("cannot reach ingestd ({}) on {}: {}: {}", dbus::kServiceName,
                      dbus::describe_bus(bus), name, e.getMessage())};
}

class Client {
 public:
  explicit Client(const Options& options)
      : options_(options),
        connection_(dbus::connect_bus(options.bus)),
        proxy_(sdbus::createProxy(*connection_, dbus::kServiceName, dbus::kObjectPath)) {}

  std::string get_status(std::chrono::microseconds timeout = kCallTimeout) {
    std::string json;
    proxy_->callMethod("GetStatus")
        .onInterface(dbus::kInterface)
        .withTimeout(timeout)
        .storeResultsTo(json);
    return json;
  }

  // One snapshot (rates from two samples `interval` apart), as plain text or JSON, with `once`,
  // --json or when stdout is not a terminal; else the live view until q or a signal.
  int top(double interval, bool once) {
    ingestd::ctl::StatusSnapshot before, now;
    if (!sample(before)) return kExitFailed;
    if (once || options_.json || !isatty(STDOUT_FILENO)) {
      std::this_thread::sleep_for(std::chrono::duration<double>(interval));
      if (!sample(now)) return kExitFailed;
      if (options_.json) {
        std::printf("%s\n", ingestd::ctl::top_json(&before, now, interval).c_str());
      } else {
        for (const std::string& line :
             ingestd::ctl::render_top(&before, now, interval, terminal_size().first))
          std::printf("%s\n", line.c_str());
      }
      return kExitOk;
    }
    int wake[2];
    if (pipe(wake) != 0) {
      std::perror("ingestctl: pipe");
      return kExitFailed;
    }
    g_wake_fd = wake[1];
    struct sigaction action {};
    action.sa_handler = on_stop_signal;  // no SA_RESTART: poll() returns on the signal
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
    LiveScreen screen;
    const ingestd::ctl::StatusSnapshot* previous = nullptr;  // the first screen has no rates
    now = before;
    while (true) {
      auto [columns, rows] = terminal_size();
      LiveScreen::draw(ingestd::ctl::render_top(previous, now, interval, columns), rows);
      if (!screen.wait(interval, wake[0])) break;
      before = std::move(now);
      previous = &before;
      if (!sample(now)) return kExitFailed;
    }
    return kExitOk;
  }

  int status() {
    std::string json = get_status();
    if (options_.json) {
      std::printf("%s\n", json.c_str());
      return kExitOk;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(json).get(doc) != simdjson::SUCCESS) {
      std::fprintf(stderr, "ingestctl: GetStatus returned something that is not JSON: %s\n",
                   json.c_str());
      return kExitFailed;
    }
    std::printf("state:       %s\n", text(doc["state"]).c_str());
    std::printf("version:     %s\n", text(doc["version"]).c_str());
    std::printf("config:      %s\n", text(doc["config_path"]).c_str());
    if (auto level = text(doc["log_level"]); !level.empty())
      std::printf("log level:   %s\n", level.c_str());
    simdjson::dom::array components;
    if (doc["components"].get(components) == simdjson::SUCCESS) {
      std::printf("components:  %zu\n", components.size());
      for (simdjson::dom::element c : components) {
        // Each component is an object {name, kind, type, ...} or just its name.
        if (c.is_string())
          std::printf("  %s\n", text(simdjson::dom::element(c)).c_str());
        else
          std::printf("  %-10s %-20s %-12s%s\n", text(c["kind"]).c_str(), text(c["name"]).c_str(),
                      text(c["type"]).c_str(), counts(c).c_str());
      }
    }
    std::printf("last reload: %s\n", ingestd::ctl::describe_reload(doc["last_reload"]).c_str());
    return kExitOk;
  }

  int reload() {
    bool ok = false;
    std::string message;
    proxy_->callMethod("Reload")
        .onInterface(dbus::kInterface)
        .withTimeout(kCallTimeout)
        .storeResultsTo(ok, message);
    // Reload returns the first error only; every error is in the status's last_reload.
    std::vector<std::string> errors;
    if (!ok) errors = last_reload_errors();
    if (options_.json) {
      print_json_result(ok, "message", message, errors);
    } else if (ok) {
      std::printf("%s\n", message.c_str());
    } else {
      std::fprintf(stderr, "reload failed: %s\n", message.c_str());
      for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    }
    return ok ? kExitOk : kExitFailed;
  }

  int validate(const std::string& file) {
    // The daemon resolves nothing against the caller's directory: send the full path.
    std::string path = std::filesystem::absolute(file).lexically_normal().string();
    bool ok = false;
    std::vector<std::string> errors;
    proxy_->callMethod("Validate")
        .onInterface(dbus::kInterface)
        .withTimeout(kCallTimeout)
        .withArguments(path)
        .storeResultsTo(ok, errors);
    if (options_.json) {
      print_json_result(ok, "path", path, errors);
    } else if (ok) {
      std::printf("%s: ok\n", path.c_str());
    } else {
      for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
    }
    return ok ? kExitOk : kExitFailed;
  }

  int aggregates(const std::string& component, const std::vector<std::string>& where) {
    std::map<std::string, std::string> filter;
    for (const std::string& w : where) {
      size_t eq = w.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "ingestctl: --where takes FIELD=TEXT, not '%s'\n", w.c_str());
        return kExitUsage;
      }
      filter[w.substr(0, eq)] = w.substr(eq + 1);
    }
    std::string json;
    proxy_->callMethod("GetAggregates")
        .onInterface(dbus::kInterface)
        .withTimeout(kCallTimeout)
        .withArguments(component, filter)
        .storeResultsTo(json);
    if (options_.json) {
      std::printf("%s\n", json.c_str());
      return kExitOk;
    }
    simdjson::dom::parser parser;
    simdjson::dom::array rows;
    if (parser.parse(json).get(rows) != simdjson::SUCCESS) {
      std::fprintf(stderr,
                   "ingestctl: GetAggregates returned something that is not a JSON array\n");
      return kExitFailed;
    }
    for (simdjson::dom::element row : rows) std::printf("%s\n", simdjson::minify(row).c_str());
    return kExitOk;
  }

  int log_level(const std::string& level) {
    proxy_->callMethod("SetLogLevel")
        .onInterface(dbus::kInterface)
        .withTimeout(kCallTimeout)
        .withArguments(level);
    if (options_.json) {
      std::string out = "{\"ok\":true,\"level\":";
      ingestd::json::append_string(out, level);
      std::printf("%s}\n", out.c_str());
    } else {
      std::printf("log level: %s\n", level.c_str());
    }
    return kExitOk;
  }

 private:
  bool sample(ingestd::ctl::StatusSnapshot& out) {
    std::string error;
    if (ingestd::ctl::parse_status(get_status(kTopCallTimeout), out, error)) return true;
    std::fprintf(stderr, "ingestctl: %s\n", error.c_str());
    return false;
  }

  static std::string text(simdjson::simdjson_result<simdjson::dom::element> value) {
    std::string_view s;
    if (value.get(s) == simdjson::SUCCESS) return std::string(s);
    return "";
  }

  // {"ok":...,"<key>":"<value>","errors":[...]} on stdout.
  static void print_json_result(bool ok, const char* key, const std::string& value,
                                const std::vector<std::string>& errors) {
    std::string out = fmt::format("{{\"ok\":{},\"{}\":", ok, key);
    ingestd::json::append_string(out, value);
    out += ",\"errors\":[";
    for (size_t i = 0; i < errors.size(); ++i) {
      if (i > 0) out += ',';
      ingestd::json::append_string(out, errors[i]);
    }
    std::printf("%s]}\n", out.c_str());
  }

  // " in N out M" from a component's events_in / events_out, when the status has them, and a
  // sink's breaker state unless it is closed.
  static std::string counts(simdjson::dom::element component) {
    std::string out;
    for (const char* key : {"events_in", "events_out"}) {
      uint64_t n = 0;
      if (component[key].get(n) == simdjson::SUCCESS)
        out += fmt::format(" {} {}", std::string_view(key).substr(7), n);
    }
    std::string_view breaker;
    if (component["breaker"].get(breaker) == simdjson::SUCCESS && breaker != "closed")
      out += fmt::format(" (breaker {})", breaker);
    return out;
  }

  std::vector<std::string> last_reload_errors() {
    std::vector<std::string> errors;
    try {
      std::string json = get_status();
      simdjson::dom::parser parser;
      simdjson::dom::array list;
      if (parser.parse(json)["last_reload"]["errors"].get(list) == simdjson::SUCCESS)
        for (simdjson::dom::element e : list) errors.push_back(text(simdjson::dom::element(e)));
    } catch (const sdbus::Error&) {
      // The reload's own message has been printed; the details are a bonus.
    }
    return errors;
  }

  const Options& options_;
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IProxy> proxy_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ingestctl: control a running ingestd over D-Bus"};
  app.footer(
      "Exit codes: 0 success, 1 failed reload or invalid file, 64 usage error, 69 the daemon "
      "cannot be reached on the bus, 77 the bus policy refused the call (Reload, Validate, "
      "SetLogLevel and GetAggregates need root).");
  app.require_subcommand(1);
  Options options;
  app.add_option("--bus", options.bus, "The bus: system, session or a D-Bus address")
      ->default_str("system");
  app.add_flag("--json", options.json, "Print results as JSON, for scripts");
  auto* reload_cmd = app.add_subcommand("reload", "Re-read and apply the daemon's config file");
  auto* status_cmd =
      app.add_subcommand("status", "Show state, version, config, components and last reload");
  auto* validate_cmd =
      app.add_subcommand("validate", "Check a pipeline file with the daemon's plugins");
  std::string file;
  validate_cmd->add_option("file", file, "Pipeline file")->required();
  auto* level_cmd = app.add_subcommand("log-level", "Change the daemon's log level");
  std::string level;
  level_cmd->add_option("level", level, "trace, debug, info, warning (or warn), error")->required();
  auto* aggregates_cmd = app.add_subcommand(
      "aggregates", "Show an aggregator's open and last closed windows, one group per line (JSON)");
  std::string component;
  std::vector<std::string> where;
  aggregates_cmd->add_option("name", component, "The aggregator")->required();
  aggregates_cmd->add_option("--where", where, "Only groups whose FIELD has TEXT (repeatable)")
      ->type_name("FIELD=TEXT");
  auto* top_cmd = app.add_subcommand(
      "top", "Live per-component rates, queues, drops, errors, breakers and spools (q quits)");
  double interval = 1.0;
  bool once = false;
  top_cmd
      ->add_option("--interval", interval,
                   "Seconds between refreshes (and between the two samples of a snapshot)")
      ->check(CLI::Range(0.1, 3600.0))
      ->default_str("1");
  top_cmd->add_flag("--once", once,
                    "Print one plain snapshot and exit (also when stdout is not a terminal; "
                    "with --json: as JSON)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  try {
    Client client(options);
    if (*reload_cmd) return client.reload();
    if (*status_cmd) return client.status();
    if (*validate_cmd) return client.validate(file);
    if (*aggregates_cmd) return client.aggregates(component, where);
    if (*top_cmd) return client.top(interval, once);
    return client.log_level(level);
  } catch (const sdbus::Error& e) {
    Failure f = classify(e, options.bus);
    std::fprintf(stderr, "ingestctl: %s\n", f.message.c_str());
    return f.code;
  }
}
