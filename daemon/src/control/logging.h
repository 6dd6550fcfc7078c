#pragma once

#include <string>

namespace ingestd::control {

// Logs go to stderr, human-readable, one line per message.
void init_logging();
// trace|debug|info|warn|error; unknown names leave the level as it is.
void set_log_level(const std::string& level);

}  // namespace ingestd::control
