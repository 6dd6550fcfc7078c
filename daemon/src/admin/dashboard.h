// The dashboard's files (daemon/admin-ui/), embedded into the binary at build time
// (cmake/EmbedAssets.cmake): the daemon serves its page with no data directory to find and
// nothing fetched from the network, and the page always matches the API of the binary serving it.
#pragma once

#include <span>
#include <string_view>

namespace ingestd::admin {

struct Asset {
  std::string_view name;          // "index.html", "app.js": the file's name in daemon/admin-ui/
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view bytes;
  std::string_view etag;  // a strong validator, quoted: "\"3f2a...\"" (a hash of the bytes)
};

// Every embedded file; static storage, never changes while the process runs.
std::span<const Asset> dashboard_assets();

// The asset served at `path`: "/" is index.html, "/ui/<name>" the others; nullptr for any other
// path.
const Asset* find_dashboard_asset(std::string_view path);

}  // namespace ingestd::admin
