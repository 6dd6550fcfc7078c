#pragma once

#include <cstdint>

namespace ingestd {

// The version of the plugin SDK. A plugin built against a newer minor than the daemon's, or
// another major, is refused.
inline constexpr uint32_t kSdkMajor = 0;
inline constexpr uint32_t kSdkMinor = 2;

// Layout version of PluginDescriptor/ComponentDescriptor and of the entry symbol's contract.
inline constexpr uint32_t kAbiVersion = 1;

}  // namespace ingestd
