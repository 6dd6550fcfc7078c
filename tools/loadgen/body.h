// ingestd-loadgen: the request bodies, rendered from a record template into buffers that are
// reused from one request to the next.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "source/generator/generator_template.h"

namespace ingestd::loadgen {

enum class Shape { kVisit, kActivity, kMetric, kTemplate };
enum class BodyFormat { kArray, kNdjson };

// The built-in record templates (source/generator's placeholders), each with a `seq` field.
// kTemplate has none: the caller passes its own.
std::string_view shape_template(Shape shape);
std::optional<Shape> parse_shape(std::string_view name);

// Compresses into a buffer it keeps, with one zlib stream reset per body rather than set up
// anew, so that compressing costs no allocation once the buffer has grown. Not thread-safe.
class Gzipper {
 public:
  Gzipper();
  ~Gzipper();
  Gzipper(const Gzipper&) = delete;
  Gzipper& operator=(const Gzipper&) = delete;

  // One gzip member (RFC 1952) holding `in`; valid until the next call.
  std::string_view compress(std::string_view in);

 private:
  struct State;
  State* state_;
  std::string out_;
};

// Renders the body of request `index`: `records` records of the template, numbered
// seq = index * records + j (j = 0 .. records-1), as a JSON array or as NDJSON lines,
// gzip-compressed when asked. The random placeholders of a request are drawn from a generator
// seeded with (seed, index), so a body depends only on the seed and its index (and the time
// placeholders), not on which thread or connection renders it.
//
// Holds its buffers: render() does not allocate once they have grown to a body's size, and the
// view it returns is valid until the next render(). Not thread-safe: one per worker thread.
class BodyRenderer {
 public:
  struct Options {
    std::string record_template;
    uint32_t records = 1;  // >= 1
    BodyFormat format = BodyFormat::kArray;
    bool gzip = false;
    uint64_t seed = 1;
  };

  // False with the reason in `error` when the template does not compile.
  bool init(const Options& options, std::string& error);
  std::string_view render(uint64_t index, int64_t now_ns);
  // The Content-Type of the bodies: application/json or application/x-ndjson.
  std::string_view content_type() const;
  // The uncompressed size of the last body rendered.
  size_t last_raw_size() const { return raw_.size(); }

 private:
  Options options_;
  ingestd::plugins::GeneratorTemplate template_;
  std::string raw_;
  std::unique_ptr<Gzipper> gzipper_;  // with gzip
};

}  // namespace ingestd::loadgen
