// A source that emits `count` one-line events, for the loader's and runtime's tests.
#pragma once

#include "ingestd/plugin.h"

namespace ingestd::test_plugins {

class TestSource : public Source {
 public:
  TestSource(const Options& options, Diagnostics&) : count_(options.get_int("count", 3)) {}
  void run(Context& ctx, Output& out) override {
    auto batch = std::make_unique<Batch>();
    batch->ingest_time_ns = ctx.clock().now_ns();
    for (int64_t i = 0; i < count_; ++i) batch->add(batch->copy("{}"), batch->ingest_time_ns);
    out.push(std::move(batch));
  }

 private:
  int64_t count_;
};

inline constexpr OptionSpec kTestSourceOptions[] = {
    {.name = "count", .type = OptionType::kInt, .default_value = "3", .doc = "Events to emit."},
};

}  // namespace ingestd::test_plugins
