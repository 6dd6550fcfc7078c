#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "runtime/graph.h"
#include "runtime/metrics.h"
#include "runtime/plugin_loader.h"

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
};

// A pipeline read, validated and built (factories run, no I/O). Members are declared so that
// the graph, whose components come from the plugins, is destroyed before the catalog unloads them.
struct Loaded {
  runtime::PluginCatalog catalog;
  config::Pipeline pipeline;
  runtime::Metrics metrics;
  std::unique_ptr<runtime::Graph> graph;
};

// Reads the config, scans plugins, validates and builds. On failure returns kExitConfig and hands
// every error, `file:line:col: message`, to `errors` (when given) or prints it to stderr.
int load(const Settings& settings, Loaded& loaded, std::vector<std::string>* errors = nullptr);

int run(const Settings& settings);
int validate(const Settings& settings);
int list_plugins(const Settings& settings, bool markdown);

}  // namespace ingestd::control
