// decode_batch() on arbitrary bytes: never crashes, reads out of bounds or leaks. What it accepts
// survives a round trip: encoding the decoded batch and decoding that gives the same encoding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingestd/batch_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  ingestd::BatchPtr batch =
      ingestd::decode_batch(std::string_view(reinterpret_cast<const char*>(data), size), error);
  if (!batch) {
    if (error.empty()) {
      std::fprintf(stderr, "decode_batch failed without an error\n");
      std::abort();
    }
    return 0;
  }
  std::string once;
  ingestd::encode_batch(*batch, once);
  ingestd::BatchPtr again = ingestd::decode_batch(once, error);
  if (!again) {
    std::fprintf(stderr, "a re-encoded batch does not decode: %s\n", error.c_str());
    std::abort();
  }
  std::string twice;
  ingestd::encode_batch(*again, twice);
  if (once != twice) {
    std::fprintf(stderr, "a round trip changed the encoding\n");
    std::abort();
  }
  return 0;
}
