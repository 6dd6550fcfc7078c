// An event's fields as text, for tests that compare what two parsers made of one record.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

#include "ingestd/event.h"

namespace ingestd::testing {

// Key, type and value of each field in order; doubles to the bit.
inline std::string exact_fields(const Batch& batch, const Event& event) {
  std::string out;
  for (const Field& f : batch.fields(event)) {
    out += std::string(f.key) + "=" + std::to_string(static_cast<int>(f.value.type)) + ":";
    if (f.value.type == Value::Type::kDouble)
      out += std::to_string(std::bit_cast<uint64_t>(f.value.d));
    else
      f.value.append_text(out);
    out += ";";
  }
  return out;
}

}  // namespace ingestd::testing
