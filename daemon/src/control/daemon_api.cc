#include "control/daemon_api.h"

#include "ingestd/json.h"

namespace ingestd::control {

namespace {

void append_names(std::string& out, const char* key, const std::vector<std::string>& names) {
  out += ",\"";
  out += key;
  out += "\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    json::append_string(out, names[i]);
  }
  out += ']';
}

}  // namespace

std::string ReloadReport::to_json() const {
  std::string out = "{\"ok\":";
  out += ok ? "true" : "false";
  out += ",\"message\":";
  json::append_string(out, message);
  append_names(out, "errors", errors);
  append_names(out, "kept", kept);
  append_names(out, "replaced", replaced);
  append_names(out, "added", added);
  append_names(out, "removed", removed);
  out += ",\"finished_realtime_ns\":";
  out += std::to_string(finished_realtime_ns);
  out += '}';
  return out;
}

}  // namespace ingestd::control
