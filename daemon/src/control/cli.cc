#include "control/cli.h"

#include <malloc.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "control/daemon.h"
#include "control/logging.h"

namespace ingestd::control {

namespace {

// Batches are allocated on one thread and freed on another, at a steady rate. With glibc's
// defaults their larger blocks are mmap()ed and munmap()ed, or trimmed off the heap, each time,
// and every batch pays page faults for memory it just gave back. Keep such memory in the heap;
// the bounded queues bound how much there is.
void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  // A closed stdout (`ingestd ... | head`) must not kill the daemon before it drains and prints
  // its summary: writes fail with EPIPE instead, and the stdout sink reports that.
  std::signal(SIGPIPE, SIG_IGN);
  init_logging();
  CLI::App app{"ingestd: runs the data pipelines declared in one YAML file"};
  app.set_version_flag("--version", std::string("ingestd ") + INGESTD_VERSION);
  app.fallthrough();
  app.require_subcommand(0, 1);

  Settings settings;
  bool demo = false;
  app.add_option("-c,--config", settings.config_path, "Pipeline file")
      ->default_str(kDefaultConfigPath);
  app.add_flag("--demo", demo, "Run the embedded demo pipeline (config/demo.yaml)");
  app.add_option("--plugin-dir", settings.plugin_dirs,
                 "Also load plugins from this directory (repeatable; searched first)");
  app.add_option("--stats-file", settings.stats_file,
                 "At exit, write every counter to this file as JSON");
  app.add_option("--log-level", settings.log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

  auto* run_cmd = app.add_subcommand("run", "Run the pipeline in the foreground (the default)");
  auto* validate_cmd = app.add_subcommand("validate", "Check a pipeline file without running it");
  std::string validate_path;
  validate_cmd->add_option("file", validate_path, "Pipeline file")->required();
  auto* plugins_cmd = app.add_subcommand("plugins", "List plugins, their components and options");
  bool markdown = false;
  plugins_cmd->add_flag("--markdown", markdown, "Print the components reference as Markdown");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (*validate_cmd) {
    settings.config_path = validate_path;
    return validate(settings);
  }
  if (*plugins_cmd) return list_plugins(settings, markdown);
  (void)run_cmd;
  if (demo) {
    settings.config_path.clear();
  } else if (settings.config_path.empty()) {
    if (access(kDefaultConfigPath, F_OK) == 0) settings.config_path = kDefaultConfigPath;
  }
  return run(settings);
}

}  // namespace ingestd::control
