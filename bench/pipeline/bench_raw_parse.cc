// bench_raw_parse: the raw JSON parsing rate that the pipeline benchmark compares ingestd with.
//
// Reads an NDJSON file into memory, then with simdjson On Demand parses every line as its own
// document, as parse/json does, walks all of its top-level fields and reads the string values of
// the ones the benchmark pipeline uses (device, title, country, sev). Runs several passes over
// the same buffer and prints the best one, as one JSON line on stdout:
//   {"events": N, "errors": E, "bytes": B, "seconds": S, "events_per_sec": R, "kernel": K}
// Exit status 1 when the file cannot be read or holds no lines.
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

#define BENCH_STRINGIFY_IMPL(x) #x
#define BENCH_STRINGIFY(x) BENCH_STRINGIFY_IMPL(x)
// The On Demand kernel this file was compiled with (chosen from the target flags, -march).
constexpr const char* kKernel = BENCH_STRINGIFY(SIMDJSON_BUILTIN_IMPLEMENTATION);

struct PassResult {
  size_t events = 0;
  size_t errors = 0;
  uint64_t checksum = 0;  // consumed so that the compiler cannot drop the field reads
  double seconds = 0;
};

// Reads the four pipeline fields of one line; false when the line is not a JSON object. Other
// fields' values are skipped by the iteration itself, as On Demand does for unread values.
bool read_fields(simdjson::ondemand::parser& parser, simdjson::padded_string_view line,
                 uint64_t& checksum) {
  simdjson::ondemand::document doc;
  if (parser.iterate(line).get(doc)) return false;
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return false;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    if (key == "device" || key == "title" || key == "country" || key == "sev") {
      std::string_view value;
      if (field.value().get_string().get(value)) return false;
      checksum += value.size() + static_cast<unsigned char>(value.empty() ? 0 : value[0]);
    }
  }
  return true;
}

PassResult run_pass(simdjson::ondemand::parser& parser, const simdjson::padded_string& input) {
  PassResult result;
  const char* data = input.data();
  const size_t size = input.size();
  auto begin = std::chrono::steady_clock::now();
  size_t pos = 0;
  while (pos < size) {
    const void* nl = std::memchr(data + pos, '\n', size - pos);
    const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data) : size;
    if (end > pos) {
      // Each line is followed by the rest of the buffer and then by the padded_string's own
      // SIMDJSON_PADDING bytes, so it can be parsed in place without a copy.
      simdjson::padded_string_view line(data + pos, end - pos,
                                        size - pos + simdjson::SIMDJSON_PADDING);
      if (read_fields(parser, line, result.checksum)) {
        ++result.events;
      } else {
        ++result.errors;
      }
    }
    pos = end + 1;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s FILE.jsonl [PASSES]\n", argv[0]);
    return 2;
  }
  const int passes = argc == 3 ? std::max(1, std::atoi(argv[2])) : 3;
  simdjson::padded_string input;
  if (auto error = simdjson::padded_string::load(argv[1]).get(input)) {
    std::fprintf(stderr, "cannot read %s: %s\n", argv[1], simdjson::error_message(error));
    return 1;
  }
  simdjson::ondemand::parser parser;
  // On Demand uses the kernel chosen at compile time from the target flags, unlike the DOM API's
  // runtime dispatch: print it, since it decides the rate.
  std::fprintf(stderr, "simdjson on-demand kernel: %s\n", kKernel);
  PassResult best;
  for (int i = 0; i < passes; ++i) {
    PassResult r = run_pass(parser, input);
    std::fprintf(stderr, "pass %d: %zu events in %.3f s (checksum %llu)\n", i + 1, r.events,
                 r.seconds, static_cast<unsigned long long>(r.checksum));
    if (i == 0 || r.seconds < best.seconds) best = r;
  }
  if (best.events == 0) {
    std::fprintf(stderr, "%s holds no parsable lines\n", argv[1]);
    return 1;
  }
  std::printf(
      "{\"events\": %zu, \"errors\": %zu, \"bytes\": %zu, \"seconds\": %.6f, "
      "\"events_per_sec\": %.1f, \"kernel\": \"%s\"}\n",
      best.events, best.errors, input.size(), best.seconds,
      static_cast<double>(best.events) / best.seconds, kKernel);
  return 0;
}
