// The plugin boundary: the descriptor a shared library exports and the macro that builds it.
//
// A plugin .so exports exactly one symbol, `ingestd_plugin_v1`, returning a PluginDescriptor.
// The loader reads `size` and `abi_version` first, then compares the build signature field by
// field with its own, and only then looks at anything else; a mismatch is refused with the name
// of the field that differs. Only plain data and the SDK's interfaces cross the boundary, and no
// exception does: the factory trampoline catches and reports through Diagnostics.
//
//   static constexpr ingestd::OptionSpec kOptions[] = {...};
//   INGESTD_PLUGIN("file", "0.1.0",
//                  ingestd::describe<FileSink>(ingestd::Kind::kSink, "file", "Writes ...",
//                  kOptions));
#pragma once

#include <cstdint>
#include <exception>
#include <span>

#include "ingestd/component.h"
#include "ingestd/schema.h"
#include "ingestd/version.h"

namespace ingestd {

enum class Kind : uint32_t { kSource = 1, kParser = 2, kAggregator = 3, kSink = 4 };

// Compiler and library facts that must match between the daemon and a plugin, because C++ types
// (std::string, std::vector, vtables) cross the boundary.
struct BuildSignature {
  uint32_t size;
  uint32_t sdk_major;
  uint32_t sdk_minor;
  uint32_t compiler_major;  // __GNUC__
  uint32_t libstdcxx;       // _GLIBCXX_RELEASE
  uint32_t cxx11_abi;       // _GLIBCXX_USE_CXX11_ABI
  uint32_t sanitizers;      // bit 0 address, bit 1 thread
};

constexpr BuildSignature this_build() {
  uint32_t sanitizers = 0;
#if defined(__SANITIZE_ADDRESS__)
  sanitizers |= 1;
#endif
#if defined(__SANITIZE_THREAD__)
  sanitizers |= 2;
#endif
  return BuildSignature{sizeof(BuildSignature),
                        kSdkMajor,
                        kSdkMinor,
                        static_cast<uint32_t>(__GNUC__),
                        static_cast<uint32_t>(_GLIBCXX_RELEASE),
                        static_cast<uint32_t>(_GLIBCXX_USE_CXX11_ABI),
                        sanitizers};
}

// Component flags.
inline constexpr uint32_t kSingleWorker = 1;  // never more than one instance (e.g. one output file)
// One instance unless `workers` asks for more: instances writing in parallel would reorder what
// it writes (e.g. the records of a Kafka partition). Without a flag, parsers and sinks run as
// many instances as the process may use cores.
inline constexpr uint32_t kOrderedWrites = 2;

// An output of a component beside its main one, which a consumer reads as `inputs:
// [component.name]` (e.g. the window's late events: `late: route` on it, `inputs: [w.late]`). It is
// on when the option at `option` (a dotted path, e.g. "window.late") has the text `value`; the
// config then requires a consumer of it, and the core hands the component an Output for it
// (Context::side_output()).
struct SideOutputSpec {
  const char* name;    // the port: [a-z0-9_]+
  const char* option;  // dotted option path that turns it on
  const char* value;   // the option's text that turns it on
  const char* doc;
};

struct ComponentDescriptor {
  uint32_t size;
  Kind kind;
  const char* type;  // the YAML `type:`
  const char* doc;
  const OptionSpec* options;
  uint32_t option_count;
  uint32_t flags;
  // Builds an instance of the class matching `kind`, or returns nullptr after reporting errors.
  // Never throws.
  Component* (*create)(const Options& options, Diagnostics& diag) noexcept;
  // Side outputs (SDK 0.8): none when side_output_count is 0.
  const SideOutputSpec* side_outputs = nullptr;
  uint32_t side_output_count = 0;
};

struct PluginDescriptor {
  uint32_t size;
  uint32_t abi_version;
  BuildSignature build;
  const char* name;
  const char* version;
  const ComponentDescriptor* components;
  uint32_t component_count;
};

namespace detail {
template <class T>
Component* create(const Options& options, Diagnostics& diag) noexcept {
  try {
    return new T(options, diag);
  } catch (const std::exception& e) {
    diag.error("", e.what());
  } catch (...) {
    diag.error("", "unknown error while creating the component");
  }
  return nullptr;
}
}  // namespace detail

// T derives from the class of `kind` and has a constructor T(const Options&, Diagnostics&).
template <class T, size_t N>
constexpr ComponentDescriptor describe(Kind kind, const char* type, const char* doc,
                                       const OptionSpec (&options)[N], uint32_t flags = 0) {
  return ComponentDescriptor{
      sizeof(ComponentDescriptor), kind, type, doc, options, static_cast<uint32_t>(N), flags,
      &detail::create<T>};
}

// As describe(), for a component with side outputs.
template <class T, size_t N, size_t M>
constexpr ComponentDescriptor describe(Kind kind, const char* type, const char* doc,
                                       const OptionSpec (&options)[N],
                                       const SideOutputSpec (&side_outputs)[M],
                                       uint32_t flags = 0) {
  ComponentDescriptor d = describe<T>(kind, type, doc, options, flags);
  d.side_outputs = side_outputs;
  d.side_output_count = static_cast<uint32_t>(M);
  return d;
}

}  // namespace ingestd

extern "C" {
using ingestd_plugin_entry_fn = const ingestd::PluginDescriptor* (*)();
}

#define INGESTD_PLUGIN_ENTRY_SYMBOL "ingestd_plugin_v1"

#define INGESTD_PLUGIN(NAME, VERSION, ...)                                             \
  extern "C" __attribute__((visibility("default"))) const ::ingestd::PluginDescriptor* \
  ingestd_plugin_v1() {                                                                \
    static const ::ingestd::ComponentDescriptor components[] = {__VA_ARGS__};          \
    static const ::ingestd::PluginDescriptor descriptor{                               \
        sizeof(::ingestd::PluginDescriptor),                                           \
        ::ingestd::kAbiVersion,                                                        \
        ::ingestd::this_build(),                                                       \
        NAME,                                                                          \
        VERSION,                                                                       \
        components,                                                                    \
        static_cast<uint32_t>(sizeof(components) / sizeof(components[0]))};            \
    return &descriptor;                                                                \
  }
