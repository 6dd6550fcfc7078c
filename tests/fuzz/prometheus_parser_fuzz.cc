// parse/prometheus on arbitrary bodies: never crashes, reads out of bounds or leaks. The first
// byte picks the options (per sample or scrape, flat or nested labels, HELP or not). Every line is
// counted at most once; each output event has its name and value, and its raw bytes lie in the
// body; `per: sample` emits exactly one event per counted sample, `per: scrape` one per body.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fake_context.h"
#include "parse/prometheus/prometheus_parser.h"

namespace {

ingestd::OptionValue text_option(std::string_view value) {
  ingestd::OptionValue v;
  v.type = ingestd::OptionType::kEnum;
  v.s = std::string(value);
  return v;
}

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool per_scrape = mode & 1;

  ingestd::Options options;
  options.entries.emplace_back("per", text_option(per_scrape ? "scrape" : "sample"));
  options.entries.emplace_back("labels", text_option(mode & 2 ? "nested" : "flat"));
  options.entries.emplace_back("on_error", text_option(mode & 4 ? "dead_letter" : "drop"));
  ingestd::OptionValue help;
  help.type = ingestd::OptionType::kBool;
  help.b = mode & 8;
  options.entries.emplace_back("help", help);

  ingestd::testing::FakeContext ctx;
  ingestd::testing::CollectingDiagnostics diag;
  ingestd::plugins::PrometheusParser parser(options, diag);
  check(diag.errors.empty(), "valid options refused");
  parser.start(ctx);

  ingestd::Batch batch;
  const std::string_view copy = batch.copy(body);
  ingestd::Event& in = batch.add(copy, 5);
  batch.append_field(in, "url", ingestd::Value::string("http://target/metrics"));
  parser.parse(ctx, batch);

  const uint64_t lines = static_cast<uint64_t>(std::count(body.begin(), body.end(), '\n')) + 1;
  const uint64_t samples = ctx.count("samples");
  check(ctx.count("records") == 1, "one record counted");
  check(samples + ctx.count("errors") <= lines, "a line counted twice");
  check(batch.size() == (per_scrape ? 1 : samples), "events match the samples counted");
  for (const ingestd::Event& e : batch.events()) {
    check(e.raw.data() >= copy.data() && e.raw.data() + e.raw.size() <= copy.data() + copy.size(),
          "raw bytes outside the body");
    check(batch.find(e, "url") != nullptr, "the source's field is kept");
    if (!per_scrape) {
      const ingestd::Value* name = batch.find(e, "name");
      const ingestd::Value* value = batch.find(e, "value");
      check(name && !name->s.empty(), "a sample without its name");
      check(value && value->type == ingestd::Value::Type::kDouble, "a sample without its value");
    }
  }
  return 0;
}
