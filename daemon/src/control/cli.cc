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

constexpr const char* kHelpFooter =
    R"(Without -c and without /etc/ingestd/pipeline.yaml, the embedded demo pipeline runs.

Signals:
  SIGTERM, SIGINT  stop gracefully: sources stop, queues drain, sinks flush (at most
                   shutdown_timeout); a second one stops at once, discarding what is queued
  SIGHUP           reload the pipeline file
  SIGUSR1          reopen output files (after logrotate)

Exit codes:
  0   success (a pipeline that ran to its end, or a valid file for validate)
  1   failure at run time (a component failed to start, or the shutdown deadline passed)
  64  usage error on the command line
  78  configuration error (every error printed as FILE:LINE:COL: message))";

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
  // The options of a run are the app's, so that `ingestd -c FILE` runs without a subcommand, and
  // also run's, so that `ingestd run --help` lists them.
  auto add_run_options = [&](CLI::App& to) {
    to.add_option("-c,--config", settings.config_path, "Pipeline file")
        ->default_str(kDefaultConfigPath);
    to.add_flag("--demo", demo, "Run the embedded demo pipeline (config/demo.yaml)");
    to.add_option("--plugin-dir", settings.plugin_dirs,
                  "Also load plugins from this directory (repeatable; searched first)");
    to.add_option("--stats-file", settings.stats_file,
                  "At exit, write every counter to this file as JSON");
    to.add_option("--log-level", settings.log_level, "trace, debug, info, warning (or warn), error")
        ->check(CLI::IsMember(log_level_names()));
    to.add_option("--admin-listen", settings.admin_listen,
                  "Admin HTTP address (host:port, port 0: any free one; off: none), instead of "
                  "the config's admin.listen")
        ->envname("INGESTD_ADMIN_LISTEN");
    to.add_option("--bus", settings.bus,
                  "D-Bus to serve org.ingestd.Daemon1 on: system, session, none or an address")
        ->default_str("system");
  };
  add_run_options(app);
  app.footer(kHelpFooter);

  auto* run_cmd = app.add_subcommand("run", "Run the pipeline in the foreground (the default)");
  add_run_options(*run_cmd);
  run_cmd->footer(kHelpFooter);
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
