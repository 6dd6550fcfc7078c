// bench_raw_parse: the raw JSON parsing rate that the pipeline benchmark compares ingestd with.
//
// Reads an NDJSON file into memory, then with simdjson On Demand reads every record's five
// fields (the strings device, title, country, sev and the number time) in two ways:
// - stream: the whole buffer as one document stream (iterate_many), simdjson's fastest way
//   through NDJSON and so the machine's real parse limit: the rate the pipeline is measured by;
// - per line: every line as its own document (iterate), as parse/json does today.
// Runs several passes of each over the same buffer and prints the best of each, as one JSON line
// on stdout:
//   {"events": N, "errors": E, "bytes": B, "seconds": S, "events_per_sec": R,
//    "per_line_events_per_sec": R2, "kernel": K}
// (events, errors, seconds and events_per_sec are the stream's). Exit status 1 when the file
// cannot be read, holds no lines, or the two ways disagree on the count.
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

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

// Reads the five pipeline fields of one record; false when it is not a JSON object of them.
// Other fields' values are skipped by the iteration itself, as On Demand does for unread values.
template <class Document>
bool read_fields(Document& doc, uint64_t& checksum) {
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return false;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    if (key == "device" || key == "title" || key == "country" || key == "sev") {
      std::string_view value;
      if (field.value().get_string().get(value)) return false;
      checksum += value.size() + static_cast<unsigned char>(value.empty() ? 0 : value[0]);
    } else if (key == "time") {
      int64_t time;
      if (field.value().get_int64().get(time)) return false;
      checksum += static_cast<uint64_t>(time);
    }
  }
  return true;
}

bool read_line(simdjson::ondemand::parser& parser, simdjson::padded_string_view line,
               uint64_t& checksum) {
  simdjson::ondemand::document doc;
  if (parser.iterate(line).get(doc)) return false;
  return read_fields(doc, checksum);
}

PassResult per_line_pass(simdjson::ondemand::parser& parser, const simdjson::padded_string& input) {
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
      if (read_line(parser, line, result.checksum)) {
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

// The whole buffer as one document stream: stage 1 runs over 1 MiB windows instead of per line.
PassResult stream_pass(simdjson::ondemand::parser& parser, const simdjson::padded_string& input) {
  PassResult result;
  auto begin = std::chrono::steady_clock::now();
  simdjson::ondemand::document_stream stream;
  if (parser.iterate_many(input, 1 << 20).get(stream)) {
    result.errors = 1;
    return result;
  }
  for (auto doc : stream) {
    simdjson::ondemand::document_reference ref;
    if (!std::move(doc).get(ref) && read_fields(ref, result.checksum)) {
      ++result.events;
    } else {
      ++result.errors;
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return result;
}

template <class Pass>
PassResult best_of(const char* name, int passes, Pass pass) {
  PassResult best;
  for (int i = 0; i < passes; ++i) {
    PassResult r = pass();
    std::fprintf(stderr, "%s pass %d: %zu events in %.3f s (checksum %llu)\n", name, i + 1,
                 r.events, r.seconds, static_cast<unsigned long long>(r.checksum));
    if (i == 0 || r.seconds < best.seconds) best = r;
  }
  return best;
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
  PassResult best = best_of("stream", passes, [&] { return stream_pass(parser, input); });
  PassResult line = best_of("per line", passes, [&] { return per_line_pass(parser, input); });
  if (best.events == 0) {
    std::fprintf(stderr, "%s holds no parsable lines\n", argv[1]);
    return 1;
  }
  if (line.events != best.events || line.checksum != best.checksum) {
    std::fprintf(stderr, "the stream read %zu events (checksum %llu), the lines %zu (%llu)\n",
                 best.events, static_cast<unsigned long long>(best.checksum), line.events,
                 static_cast<unsigned long long>(line.checksum));
    return 1;
  }
  std::printf(
      "{\"events\": %zu, \"errors\": %zu, \"bytes\": %zu, \"seconds\": %.6f, "
      "\"events_per_sec\": %.1f, \"per_line_events_per_sec\": %.1f, \"kernel\": \"%s\"}\n",
      best.events, best.errors, input.size(), best.seconds,
      static_cast<double>(best.events) / best.seconds,
      static_cast<double>(line.events) / line.seconds, kKernel);
  return 0;
}
