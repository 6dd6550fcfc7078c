// A descriptor from a future ABI: only its first two fields may be read.
#include <cstdint>

namespace {
struct FutureDescriptor {
  uint32_t size;
  uint32_t abi_version;
  char rest[8];
};
}  // namespace

extern "C" __attribute__((visibility("default"))) const void* ingestd_plugin_v1() {
  static const FutureDescriptor d{sizeof(FutureDescriptor), 999, {}};
  return &d;
}
