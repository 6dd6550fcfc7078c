#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/daemon_api.h"

namespace sdbus {
class IConnection;
class IObject;
}  // namespace sdbus

namespace ingestd::control {

// The daemon on D-Bus: name org.ingestd.Daemon1, object /org/ingestd/Daemon1, interface
// org.ingestd.Daemon1 (docs/operations.md is the reference):
//   methods    Reload() -> (b ok, s message); Validate(s path) -> (b ok, as errors);
//              GetStatus() -> (s json); SetLogLevel(s level) (unknown: error InvalidLevel)
//   properties Version, ConfigPath, State, LastReload (s, JSON), with PropertiesChanged
//   signals    Reloaded(b ok, s message), BreakerChanged(s sink, s state)
// Who may call what is the bus's business: systemd/org.ingestd.Daemon1.conf.
//
// Lifetime and threads: start() connects, exports the object, takes the name and starts sdbus's
// event-loop thread, which runs the handlers. The handlers call the DaemonApi (thread-safe).
// Reload and Validate may block for long, so they reply asynchronously from a thread of their own
// (at most kMaxBlockingCalls at once; more are refused with Error.Busy) and the bus stays
// responsive to GetStatus and property reads meanwhile. The destructor leaves the event loop and
// joins those threads: the DaemonApi must answer every pending reload() before this object is
// destroyed (the run loop destroys it after its last reload). refresh(), reloaded() and
// breaker_changed() may be called from any thread.
//
// Failure: when the bus cannot be reached or the name cannot be taken (policy, another daemon),
// start() logs one warning saying so and returns null; the daemon runs on without D-Bus.
class DbusService {
 public:
  static constexpr int kMaxBlockingCalls = 8;

  // `bus`: "system", "session" or an address; "none" returns null without a word.
  static std::unique_ptr<DbusService> start(const std::string& bus, DaemonApi& api);
  DbusService(const DbusService&) = delete;
  DbusService& operator=(const DbusService&) = delete;
  ~DbusService();

  // Emits PropertiesChanged for those of State, ConfigPath and LastReload whose value differs
  // from the last one emitted. Cheap; the run loop calls it after each state change.
  void refresh();
  // After every reload, whoever asked for it (SIGHUP or D-Bus): the Reloaded signal, and
  // PropertiesChanged for what changed.
  void reloaded(const ReloadReport& report);
  // The reliability layer's circuit breaker for `sink` is now `state` (closed|open|half-open).
  void breaker_changed(const std::string& sink, const std::string& state);

 private:
  struct Call {
    std::thread thread;
    std::shared_ptr<bool> done;  // guarded by calls_mu_
  };

  DbusService(std::unique_ptr<sdbus::IConnection> connection, DaemonApi& api);
  void export_object();
  // Runs `task` on a thread of its own; false when kMaxBlockingCalls already run.
  template <class Task>
  bool run_blocking(Task&& task);
  void join_finished_calls(bool all);

  DaemonApi& api_;
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IObject> object_;

  std::mutex calls_mu_;
  std::vector<Call> calls_;

  std::mutex refresh_mu_;
  std::string last_state_, last_config_path_, last_reload_;
};

}  // namespace ingestd::control
