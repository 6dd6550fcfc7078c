#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "control/daemon.h"
#include "control/daemon_api.h"

namespace ingestd::control {

// A stand-in DaemonApi for the run loop of today, which cannot apply a new config: reload()
// validates the file and, when it is valid, answers ok=false "reload not applied". It exists so
// that the D-Bus service and ingestctl can be exercised end to end; the run loop that implements
// DaemonApi itself replaces it. Thread-safe.
class InterimApi final : public DaemonApi {
 public:
  InterimApi(const Settings& settings, const config::Pipeline& pipeline)
      : settings_(settings), pipeline_(pipeline) {}

  // Called after every reload with its report (the run loop forwards it to D-Bus).
  void on_reload(std::function<void(const ReloadReport&)> callback) {
    on_reload_ = std::move(callback);
  }
  void set_state(const std::string& state);

  ReloadReport reload() override;
  std::vector<std::string> validate(const std::string& path) override;
  std::string status_json() override;
  bool set_log_level(const std::string& level) override;
  std::string state() const override;
  std::string config_path() const override { return pipeline_.path; }
  ReloadReport last_reload() const override;

 private:
  const Settings& settings_;
  const config::Pipeline& pipeline_;
  std::function<void(const ReloadReport&)> on_reload_;
  mutable std::mutex mu_;
  std::string state_ = "starting";
  ReloadReport last_reload_;
  std::mutex reload_mu_;  // one reload at a time
};

}  // namespace ingestd::control
