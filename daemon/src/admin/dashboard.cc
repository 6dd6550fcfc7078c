#include "admin/dashboard.h"

namespace ingestd::admin {

const Asset* find_dashboard_asset(std::string_view path) {
  constexpr std::string_view kPrefix = "/ui/";
  std::string_view name;
  if (path == "/")
    name = "index.html";
  else if (path.starts_with(kPrefix))
    name = path.substr(kPrefix.size());
  else
    return nullptr;
  for (const Asset& a : dashboard_assets())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace ingestd::admin
