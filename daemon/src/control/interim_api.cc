#include "control/interim_api.h"

#include <time.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "control/logging.h"
#include "ingestd/json.h"

namespace ingestd::control {

void InterimApi::set_state(const std::string& state) {
  std::lock_guard lock(mu_);
  state_ = state;
}

std::string InterimApi::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

ReloadReport InterimApi::last_reload() const {
  std::lock_guard lock(mu_);
  return last_reload_;
}

std::vector<std::string> InterimApi::validate(const std::string& path) {
  Settings settings = settings_;
  settings.config_path = path;
  Loaded loaded;
  std::vector<std::string> errors;
  if (load(settings, loaded, &errors) != kExitOk && errors.empty())
    errors.push_back(path + ": invalid");
  return errors;
}

ReloadReport InterimApi::reload() {
  std::lock_guard reload_lock(reload_mu_);
  ReloadReport report;
  report.errors = validate(pipeline_.path);
  if (report.errors.empty()) {
    report.message = fmt::format(
        "reload not applied: {} is valid, but this build applies a new config only on restart",
        pipeline_.path);
  } else {
    report.message = report.errors.front();
    if (report.errors.size() > 1)
      report.message += fmt::format(" (and {} more errors)", report.errors.size() - 1);
  }
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  report.finished_realtime_ns = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  if (report.errors.empty()) {
    spdlog::warn("{}", report.message);
  } else {
    spdlog::error("reload refused; the running pipeline is unchanged:");
    for (const auto& e : report.errors) spdlog::error("{}", e);
  }
  {
    std::lock_guard lock(mu_);
    last_reload_ = report;
  }
  if (on_reload_) on_reload_(report);
  return report;
}

bool InterimApi::set_log_level(const std::string& level) {
  return control::set_log_level(level);
}

std::string InterimApi::status_json() {
  std::string out = "{\"state\":";
  json::append_string(out, state());
  out += ",\"version\":";
  json::append_string(out, INGESTD_VERSION);
  out += ",\"config_path\":";
  json::append_string(out, pipeline_.path);
  out += ",\"log_level\":";
  json::append_string(out, log_level());
  out += ",\"components\":[";
  for (size_t i = 0; i < pipeline_.components.size(); ++i) {
    const auto& c = pipeline_.components[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    json::append_string(out, c.name);
    out += ",\"kind\":";
    json::append_string(out, config::kind_name(c.kind));
    out += ",\"type\":";
    json::append_string(out, c.type);
    out += '}';
  }
  out += "],\"last_reload\":";
  out += last_reload().to_json();
  out += '}';
  return out;
}

}  // namespace ingestd::control
