#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace ingestd::control {

// The daemon's side of the service manager's notification protocol (sd_notify(3)), for
// Type=notify units: READY=1, RELOADING=1 with MONOTONIC_USEC, STOPPING=1, STATUS= lines and the
// watchdog (WATCHDOG=1).
//
// Without NOTIFY_SOCKET in the environment every call does nothing, so the run loop calls it
// unconditionally. The watchdog is on when WATCHDOG_USEC is set (and WATCHDOG_PID, when set, is
// this process): the run loop calls tick() often (at least every quarter of the interval), and
// tick() sends WATCHDOG=1 once half the interval has passed since the last ping, but only while
// the health check finds no problem. The check is the runtime's word that its threads make
// progress (Runtime::stalled()); a wedged pipeline stops petting, the problem is logged once, and
// systemd restarts the service (WatchdogSec= with Restart=on-failure).
//
// Thread-safety: none; one thread (the run loop) owns it.
class Notifier {
 public:
  // Reads NOTIFY_SOCKET and the watchdog interval from the environment (it stays there).
  Notifier();

  bool enabled() const { return enabled_; }
  void ready();
  // RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC now in µs>; follow it with ready().
  void reloading();
  void stopping();
  // STATUS=<line>; sent only when the line differs from the last one.
  void status(const std::string& line);

  // 0 when the service manager asked for no watchdog.
  int64_t watchdog_interval_ns() const { return watchdog_ns_; }
  // Returns "" while the process makes progress, else what is wrong ("sinks.out has been inside
  // one call for 20 s"); called from tick() when a ping is due. Unset: always healthy.
  void set_health_check(std::function<std::string()> problem) { problem_ = std::move(problem); }
  // Pings when due and healthy. `monotonic_ns` is CLOCK_MONOTONIC now.
  void tick(int64_t monotonic_ns);
  // WATCHDOG=1, now.
  void ping();

 private:
  void send(const std::string& state);

  bool enabled_ = false;
  int64_t watchdog_ns_ = 0;
  int64_t last_ping_ns_ = -1;
  bool unhealthy_reported_ = false;
  std::string last_status_;
  std::function<std::string()> problem_;
};

// The monotonic clock in ns, as MONOTONIC_USEC and tick() count it.
int64_t monotonic_now_ns();

}  // namespace ingestd::control
