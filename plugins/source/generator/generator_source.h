// source/generator: synthetic events from a template, for demos, tests and benchmarks.
#pragma once

#include <cstdint>
#include <string>

#include "generator_template.h"
#include "ingestd/component.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

inline constexpr const char* kGeneratorSourceDoc =
    "Generates one event per rendering of a line template with random, sequential and time "
    "placeholders, as fast as possible or at a fixed rate; deterministic for a given seed.";

// The default renders stream-starts events such as
// {"device":"roku","sev":"success","title":"dark","country":"BR","time":1515445354624}.
inline constexpr OptionSpec kGeneratorSourceOptions[] = {
    {.name = "template",
     .type = OptionType::kString,
     .default_value =
         R"('{"device":"{{choice xbox_one,ps4,roku,apple_tv}}","sev":"{{choice success,success,success,error}}","title":"{{choice narcos,dark,ozark,mindhunter}}","country":"{{choice UK,US,BR,DE}}","time":{{now_ms}}}')",
     .doc = "The text of each event (quote it in YAML). Placeholders: {{choice a,b,c}} one value "
            "uniformly; {{int MIN MAX}} an integer in [MIN, MAX]; {{float MIN MAX}} a number in "
            "[MIN, MAX] with as many decimals as MIN or MAX has (3 if neither has a fraction); "
            "{{hex N}} N random hex digits; {{seq}} 0, 1, 2, ...; {{now_s}}, {{now_ms}}, "
            "{{now_ns}} the current epoch time. Default: a stream-starts JSON event."},
    {.name = "rate",
     .type = OptionType::kDouble,
     .default_value = "0",
     .min = "0",
     .doc = "Events per second; 0 generates as fast as the pipeline takes them."},
    {.name = "count",
     .type = OptionType::kInt,
     .default_value = "0",
     .min = "0",
     .doc = "Events to generate before the source finishes; 0 for no limit."},
    {.name = "seed",
     .type = OptionType::kInt,
     .default_value = "1",
     .doc = "Seed of the random placeholders: equal seeds give equal output (apart from time)."},
};

// Generates events by rendering a compiled GeneratorTemplate.
//
// Each event's raw bytes are one rendering (copied into the batch arena from a reused buffer:
// no allocation per event); its time, the batch's ingest time and the {{now_*}} placeholders are
// the wall-clock time at which the batch was made. Without a rate, batches are filled to the
// batch limits back to back. With a rate, event k is due k / rate seconds after run() began on
// the monotonic clock; the source waits with ctx.wait_for_stop() (at least linger_ns, so events
// travel in batches) and then emits every event due, in batches of at most max_events, so it
// catches up after backpressure. run() returns after `count` events, or once ctx.stopping().
//
// Counter: events. Threading: start() and run() on the source's thread only.
class GeneratorSource final : public Source {
 public:
  GeneratorSource(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

 private:
  BatchPtr make_batch(Context& ctx, uint64_t n);

  GeneratorTemplate template_;
  double rate_;
  uint64_t count_;
  GeneratorRng rng_;
  uint64_t seq_ = 0;
  std::string line_;
  size_t line_estimate_ = 0;
  BatchLimits limits_;
  Counter* events_ = nullptr;
};

}  // namespace ingestd::plugins
