#pragma once

#include <ctime>

#include "ingestd/component.h"

namespace ingestd::runtime {

class SystemClock final : public Clock {
 public:
  int64_t now_ns() const override { return read(CLOCK_REALTIME); }
  int64_t monotonic_ns() const override { return read(CLOCK_MONOTONIC); }

 private:
  static int64_t read(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
};

}  // namespace ingestd::runtime
