#include "control/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace ingestd::control {

void init_logging() {
  auto logger = spdlog::stderr_color_mt("ingestd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5!l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);
}

void set_log_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level == "warn" ? "warning" : level);
  if (parsed != spdlog::level::off || level == "off") spdlog::set_level(parsed);
}

}  // namespace ingestd::control
