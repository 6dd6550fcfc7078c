#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "ingestd/plugin.h"

namespace ingestd::runtime {

struct LoadedPlugin {
  std::string path;
  void* handle = nullptr;
  const PluginDescriptor* descriptor = nullptr;
};

// Finds, vets and loads plugins, and answers which component types exist.
//
// scan() looks at every `*.so` in the given directories (in order, files sorted by name) and
// refuses, with a message naming the reason, any directory or file that is group- or
// world-writable or owned by someone other than root or the daemon's user; any file without the
// entry symbol; any descriptor whose size or ABI version does not match; any build signature that
// differs from the daemon's (the message names the field and both values); and any component type
// already provided by an earlier plugin. Only after those checks does the core look at a
// plugin's components, and only the graph layer calls a factory.
//
// dlopen() runs a library's static initializers before any check can: plugins must not do work in
// them. Libraries stay loaded until the catalog is destroyed, which must be after every component
// made from them is gone.
class PluginCatalog final : public config::Catalog {
 public:
  PluginCatalog() = default;
  PluginCatalog(const PluginCatalog&) = delete;
  PluginCatalog& operator=(const PluginCatalog&) = delete;
  ~PluginCatalog() override;

  // Appends one message per refused directory or file to `problems`. Missing directories are
  // skipped silently (the defaults need not all exist).
  void scan(const std::vector<std::string>& dirs, std::vector<std::string>& problems);

  const ComponentDescriptor* find(Kind kind, std::string_view type) const override;
  std::vector<std::string> types(Kind kind) const override;
  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  // The plugin that provides a component type.
  const LoadedPlugin* provider(const ComponentDescriptor* component) const;

 private:
  bool load(const std::string& path, std::string& problem);

  std::vector<LoadedPlugin> plugins_;
};

// The build signature check on its own: empty when compatible, else which field differs.
std::string signature_mismatch(const BuildSignature& plugin, const BuildSignature& daemon);

// The default plugin directories: the installed one and `plugins/` next to the executable.
std::vector<std::string> default_plugin_dirs();

}  // namespace ingestd::runtime
