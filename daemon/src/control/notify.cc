#include "control/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ingestd::control {

int64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  // > 0: WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0)
    watchdog_ns_ = static_cast<int64_t>(usec) * 1000;
}

void Notifier::send(const std::string& state) {
  if (!enabled_) return;
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) spdlog::debug("sd_notify({}) failed: {}", state, -rc);
}

void Notifier::ready() {
  send("READY=1");
}

void Notifier::reloading() {
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", monotonic_now_ns() / 1000));
}

void Notifier::stopping() {
  send("STOPPING=1");
}

void Notifier::status(const std::string& line) {
  if (line == last_status_) return;
  last_status_ = line;
  send("STATUS=" + line);
}

void Notifier::ping() {
  send("WATCHDOG=1");
}

void Notifier::tick(int64_t monotonic_ns) {
  if (!enabled_ || watchdog_ns_ == 0) return;
  if (last_ping_ns_ >= 0 && monotonic_ns - last_ping_ns_ < watchdog_ns_ / 2) return;
  if (std::string problem = problem_ ? problem_() : ""; !problem.empty()) {
    if (!unhealthy_reported_)
      spdlog::error("watchdog: {}; no longer telling systemd that the daemon is alive", problem);
    unhealthy_reported_ = true;
    return;
  }
  if (unhealthy_reported_) spdlog::info("watchdog: the pipeline makes progress again");
  unhealthy_reported_ = false;
  ping();
  last_ping_ns_ = monotonic_ns;
}

}  // namespace ingestd::control
