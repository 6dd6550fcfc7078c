// ingestctl: controls a running ingestd over D-Bus (and nothing else), so that it needs no
// privileges of its own beyond what the bus policy grants its caller.
//
//   ingestctl [--bus system|session|ADDRESS] [--json] reload | status | validate FILE |
//             log-level LEVEL | aggregates NAME [--where FIELD=TEXT]...
//
// Exit codes: 0 success; 1 a failed reload or an invalid file; 64 usage error (also an unknown
// log level); 69 (EX_UNAVAILABLE) the daemon cannot be reached on that bus; 77 (EX_NOPERM) the
// bus policy refused the call.

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>
#include <simdjson.h>
#include <CLI/CLI.hpp>

#include "control/dbus_names.h"
#include "ingestd/json.h"

namespace {

namespace dbus = ingestd::control::dbus;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;   // EX_UNAVAILABLE
constexpr int kExitNoPermission = 77;  // EX_NOPERM

// Long enough for a reload that drains a busy pipeline (bounded by its shutdown_timeout).
constexpr auto kCallTimeout = std::chrono::minutes(5);

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

  std::string get_status() {
    std::string json;
    proxy_->callMethod("GetStatus")
        .onInterface(dbus::kInterface)
        .withTimeout(kCallTimeout)
        .storeResultsTo(json);
    return json;
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
    std::printf("last reload: %s\n", describe_reload(doc["last_reload"]).c_str());
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

  // "none", or "ok at 2026-01-02T03:04:05Z: <message>" / "failed at ...: <message>".
  static std::string describe_reload(simdjson::simdjson_result<simdjson::dom::element> report) {
    int64_t ns = 0;
    if (report["finished_realtime_ns"].get(ns) != simdjson::SUCCESS || ns == 0) return "none";
    bool ok = false;
    if (report["ok"].get(ok) != simdjson::SUCCESS) ok = false;
    std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
    return fmt::format("{} at {:%Y-%m-%dT%H:%M:%SZ}: {}", ok ? "ok" : "failed", fmt::gmtime(secs),
                       text(report["message"]));
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
    return client.log_level(level);
  } catch (const sdbus::Error& e) {
    Failure f = classify(e, options.bus);
    std::fprintf(stderr, "ingestctl: %s\n", f.message.c_str());
    return f.code;
  }
}
