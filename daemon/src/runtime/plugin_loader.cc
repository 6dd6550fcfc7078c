#include "runtime/plugin_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace ingestd::runtime {

namespace fs = std::filesystem;

namespace {

// Refuses paths that someone other than root or the daemon's user could have written.
bool trusted(const std::string& path, std::string& problem) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    problem = fmt::format("{}: cannot stat: {}", path, std::strerror(errno));
    return false;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    problem = fmt::format(
        "{}: refused: {}-writable (mode {:04o}); plugins must be writable only "
        "by their owner",
        path, (st.st_mode & S_IWOTH) ? "world" : "group", st.st_mode & 07777);
    return false;
  }
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    problem = fmt::format("{}: refused: owned by uid {}, not by root or the daemon's user (uid {})",
                          path, st.st_uid, geteuid());
    return false;
  }
  return true;
}

bool valid_kind(Kind kind) {
  return kind == Kind::kSource || kind == Kind::kParser || kind == Kind::kAggregator ||
         kind == Kind::kSink;
}

}  // namespace

std::string signature_mismatch(const BuildSignature& plugin, const BuildSignature& daemon) {
  struct FieldCheck {
    const char* name;
    uint32_t BuildSignature::*field;
  };
  static constexpr FieldCheck kExact[] = {
      {"sdk_major", &BuildSignature::sdk_major},
      {"compiler_major", &BuildSignature::compiler_major},
      {"libstdcxx", &BuildSignature::libstdcxx},
      {"cxx11_abi", &BuildSignature::cxx11_abi},
      {"sanitizers", &BuildSignature::sanitizers},
  };
  if (plugin.size != daemon.size)
    return fmt::format("build signature size: plugin {}, daemon {}", plugin.size, daemon.size);
  for (const auto& check : kExact) {
    if (plugin.*check.field != daemon.*check.field)
      return fmt::format("build signature differs in {}: plugin {}, daemon {}", check.name,
                         plugin.*check.field, daemon.*check.field);
  }
  // Before 1.0 a minor may change the SDK's types (0.2 grew SinkResult): it must match exactly.
  // From 1.0 on an older minor is compatible.
  if (plugin.sdk_minor > daemon.sdk_minor)
    return fmt::format(
        "build signature differs in sdk_minor: plugin needs SDK {}.{}, daemon has {}.{}",
        plugin.sdk_major, plugin.sdk_minor, daemon.sdk_major, daemon.sdk_minor);
  if (daemon.sdk_major == 0 && plugin.sdk_minor != daemon.sdk_minor)
    return fmt::format(
        "build signature differs in sdk_minor: plugin built for SDK {}.{}, daemon has {}.{} "
        "(before 1.0 every minor changes the SDK: rebuild the plugin)",
        plugin.sdk_major, plugin.sdk_minor, daemon.sdk_major, daemon.sdk_minor);
  return {};
}

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs{INGESTD_PLUGIN_INSTALL_DIR};
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path() / "plugins").string());
  return dirs;
}

PluginCatalog::~PluginCatalog() {
  for (auto& p : plugins_) dlclose(p.handle);
}

void PluginCatalog::scan(const std::vector<std::string>& dirs, std::vector<std::string>& problems) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::string problem;
    if (!trusted(dir, problem)) {
      problems.push_back(problem);
      continue;
    }
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".so") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      if (std::any_of(plugins_.begin(), plugins_.end(),
                      [&](const LoadedPlugin& p) { return fs::equivalent(p.path, file, ec); }))
        continue;  // the same file reached through two directories
      if (!load(file, problem)) problems.push_back(problem);
    }
  }
}

bool PluginCatalog::load(const std::string& path, std::string& problem) {
  if (!trusted(path, problem)) return false;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    problem = fmt::format("{}: cannot load: {}", path, dlerror());
    return false;
  }
  auto fail = [&](std::string message) {
    problem = fmt::format("{}: refused: {}", path, message);
    dlclose(handle);
    return false;
  };
  auto entry =
      reinterpret_cast<ingestd_plugin_entry_fn>(dlsym(handle, INGESTD_PLUGIN_ENTRY_SYMBOL));
  if (!entry) return fail("not an ingestd plugin (no " INGESTD_PLUGIN_ENTRY_SYMBOL " symbol)");
  const PluginDescriptor* d = entry();
  if (!d) return fail("entry point returned no descriptor");
  // Read only the two leading fields until they say the rest has the layout we know.
  if (d->size < offsetof(PluginDescriptor, build) || d->abi_version != kAbiVersion)
    return fail(
        fmt::format("plugin ABI version {}, daemon expects {}", d->abi_version, kAbiVersion));
  if (d->size != sizeof(PluginDescriptor))
    return fail(
        fmt::format("descriptor size {}, daemon expects {}", d->size, sizeof(PluginDescriptor)));
  if (auto why = signature_mismatch(d->build, this_build()); !why.empty()) return fail(why);
  if (!d->name || !d->version || (!d->components && d->component_count))
    return fail("descriptor lacks a name, version or component table");
  for (uint32_t i = 0; i < d->component_count; ++i) {
    const ComponentDescriptor& c = d->components[i];
    if (c.size != sizeof(ComponentDescriptor) || !valid_kind(c.kind) || !c.type || !c.create ||
        (!c.options && c.option_count))
      return fail(fmt::format("component #{} has a malformed descriptor", i));
    if (const ComponentDescriptor* other = find(c.kind, c.type))
      return fail(fmt::format("duplicate {} type '{}', already provided by {}",
                              config::kind_name(c.kind), c.type, provider(other)->path));
  }
  plugins_.push_back(LoadedPlugin{path, handle, d});
  return true;
}

const ComponentDescriptor* PluginCatalog::find(Kind kind, std::string_view type) const {
  for (const auto& p : plugins_)
    for (uint32_t i = 0; i < p.descriptor->component_count; ++i) {
      const ComponentDescriptor& c = p.descriptor->components[i];
      if (c.kind == kind && type == c.type) return &c;
    }
  return nullptr;
}

std::vector<std::string> PluginCatalog::types(Kind kind) const {
  std::vector<std::string> out;
  for (const auto& p : plugins_)
    for (uint32_t i = 0; i < p.descriptor->component_count; ++i)
      if (p.descriptor->components[i].kind == kind)
        out.emplace_back(p.descriptor->components[i].type);
  std::sort(out.begin(), out.end());
  return out;
}

const LoadedPlugin* PluginCatalog::provider(const ComponentDescriptor* component) const {
  for (const auto& p : plugins_)
    if (component >= p.descriptor->components &&
        component < p.descriptor->components + p.descriptor->component_count)
      return &p;
  return nullptr;
}

}  // namespace ingestd::runtime
