// source `countdown`: emits `from`, from - 1, ... 1 as one-line events, then finishes.
#include <memory>
#include <string>

#include <ingestd/plugin.h>

namespace {

class Countdown : public ingestd::Source {
 public:
  Countdown(const ingestd::Options& options, ingestd::Diagnostics&)
      : from_(options.get_int("from", 3)) {}

  void run(ingestd::Context& ctx, ingestd::Output& out) override {
    auto batch = std::make_unique<ingestd::Batch>();
    batch->ingest_time_ns = ctx.clock().now_ns();
    for (int64_t i = from_; i > 0; --i)
      batch->add(batch->copy(std::to_string(i)), batch->ingest_time_ns);
    out.push(std::move(batch));
  }

 private:
  int64_t from_;
};

constexpr ingestd::OptionSpec kOptions[] = {
    {.name = "from",
     .type = ingestd::OptionType::kInt,
     .default_value = "3",
     .doc = "The first number; the source counts down to 1."},
};

}  // namespace

INGESTD_PLUGIN("countdown", "1.0.0",
               ingestd::describe<Countdown>(ingestd::Kind::kSource, "countdown",
                                            "Counts down to 1.", kOptions))
