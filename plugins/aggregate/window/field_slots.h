// The fields a component reads from every event, found in one pass over the event's fields.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ingestd/event.h"

namespace ingestd::plugins {

// A window reads up to a handful of keys from each event (its `where` fields, `group_by` and
// metric fields). Batch::find() per key scans the event's fields once for each of them; this
// scans them once for all: each field's key is compared only with the wanted keys of its length.
// The result is what Batch::find() would give for each key: its first field, or null.
class FieldSlots {
 public:
  // The slot of `key`: the index of its value in what find() fills. A key added twice has one
  // slot.
  size_t add(std::string_view key) {
    for (size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] == key) return i;
    keys_.emplace_back(key);
    const size_t slot = keys_.size() - 1;
    (key.size() < by_length_.size() ? by_length_[key.size()] : long_)
        .push_back(static_cast<uint16_t>(slot));
    return slot;
  }

  size_t size() const { return keys_.size(); }

  // Fills `out` (resized to size()) with each key's first field in `event`, or null.
  void find(const Batch& batch, const Event& event, std::vector<const Value*>& out) const {
    out.assign(keys_.size(), nullptr);  // within its capacity after the first event
    size_t missing = keys_.size();
    for (const Field& f : batch.fields(event)) {
      const std::vector<uint16_t>& slots =
          f.key.size() < by_length_.size() ? by_length_[f.key.size()] : long_;
      for (uint16_t slot : slots) {
        if (out[slot] || !same_text(f.key, keys_[slot])) continue;
        out[slot] = &f.value;
        if (--missing == 0) return;
        break;  // keys are distinct: no other slot has this one
      }
    }
  }

 private:
  std::vector<std::string> keys_;
  std::array<std::vector<uint16_t>, 64> by_length_;  // slots by key length
  std::vector<uint16_t> long_;                       // slots of keys of 64 bytes or more
};

}  // namespace ingestd::plugins
