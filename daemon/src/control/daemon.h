#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "graph/model.h"
#include "runtime/components.h"
#include "runtime/generation.h"
#include "runtime/metrics.h"

namespace ingestd::control {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitConfig = 78;  // EX_CONFIG

inline constexpr const char* kDefaultConfigPath = "/etc/ingestd/pipeline.yaml";

struct Settings {
  std::string config_path;  // empty: the embedded demo pipeline
  std::vector<std::string> plugin_dirs;
  std::string stats_file;
  std::string log_level;       // overrides the config's log.level when set
  std::string bus = "system";  // D-Bus: system, session, none or an address
  std::string admin_listen;    // overrides admin.listen when set; "off" turns the server off
};

// A pipeline read, validated and built (factories run, no I/O), ready to start or to reload into.
// The components are declared after the generation so that they go first.
struct Loaded {
  std::shared_ptr<runtime::Generation> generation;
  std::unique_ptr<runtime::Components> components;
  graph::Model model;
};

// Reads the config (settings.config_path, or the embedded demo), scans plugins, validates and
// builds, exactly as a start does. Returns false with every error, each "file:line:col: message"
// (or "file: cannot read: reason"), in `errors`.
bool load(const Settings& settings, runtime::Metrics& metrics, Loaded& loaded,
          std::vector<std::string>& errors);

int run(const Settings& settings);
int validate(const Settings& settings);
int list_plugins(const Settings& settings, bool markdown);

}  // namespace ingestd::control
