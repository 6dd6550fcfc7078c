// Records laid out as the file and SSE sources lay them out, for tests of parsers.
#pragma once

#include <string>
#include <string_view>

#include "ingestd/event.h"

namespace ingestd::testing {

// Adds the records to the batch as views of one buffer that holds them one per line, so that a
// parser sees them one after another in memory.
template <typename Records>
void add_lines(Batch& batch, const Records& records) {
  std::string text;
  for (std::string_view r : records) (text += r) += '\n';
  std::string_view buffer = batch.copy(text);
  for (std::string_view r : records) {
    batch.add(buffer.substr(0, r.size()), 0);
    buffer.remove_prefix(r.size() + 1);
  }
}

}  // namespace ingestd::testing
