// A descriptor as a plugin built by another compiler major version would carry.
#include "test_source.h"

namespace {
constexpr ingestd::ComponentDescriptor kComponents[] = {
    ingestd::describe<ingestd::test_plugins::TestSource>(
        ingestd::Kind::kSource, "test_compiler", "Never loaded.",
        ingestd::test_plugins::kTestSourceOptions)};

constexpr ingestd::BuildSignature other_compiler() {
  ingestd::BuildSignature b = ingestd::this_build();
  b.compiler_major = 3;
  return b;
}
}  // namespace

extern "C" __attribute__((visibility("default"))) const ingestd::PluginDescriptor*
ingestd_plugin_v1() {
  static const ingestd::PluginDescriptor d{sizeof(ingestd::PluginDescriptor),
                                           ingestd::kAbiVersion,
                                           other_compiler(),
                                           "test-compiler",
                                           "1.0.0",
                                           kComponents,
                                           1};
  return &d;
}
