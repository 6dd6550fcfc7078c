#include "body.h"

#include <stdexcept>

#include <zlib.h>

namespace ingestd::loadgen {

namespace {

// The workshop's jobs (shared/DESIGN.md): visits and activities posted to the collector, and
// the metric events of /event. Each record carries `seq`, its number in the run.
constexpr std::string_view kVisit =
    R"({"seq":{{seq}},"user":"u{{int 1 100000}}","page":"/{{choice home,search,item,cart,checkout}}",)"
    R"("referrer":"{{choice google,direct,newsletter,ads}}","device":"{{choice desktop,mobile,tablet}}",)"
    R"("country":"{{choice UK,US,BR,DE,FR}}","time":{{now_ms}}})";
constexpr std::string_view kActivity =
    R"({"seq":{{seq}},"user":"u{{int 1 100000}}","action":"{{choice click,scroll,play,pause,share}}",)"
    R"("target":"{{hex 8}}","duration_ms":{{int 1 60000}},"time":{{now_ms}}})";
constexpr std::string_view kMetric =
    R"({"seq":{{seq}},"username":"user{{int 1 1000}}","count":{{int 1 100000000}},)"
    R"("metric":"{{choice kite_call,kite_login,kite_search,kite_upload}}"})";

}  // namespace

std::string_view shape_template(Shape shape) {
  switch (shape) {
    case Shape::kVisit:
      return kVisit;
    case Shape::kActivity:
      return kActivity;
    case Shape::kMetric:
      return kMetric;
    case Shape::kTemplate:
      break;
  }
  return {};
}

std::optional<Shape> parse_shape(std::string_view name) {
  if (name == "visit") return Shape::kVisit;
  if (name == "activity") return Shape::kActivity;
  if (name == "metric") return Shape::kMetric;
  if (name == "template") return Shape::kTemplate;
  return std::nullopt;
}

struct Gzipper::State {
  z_stream z{};
};

Gzipper::Gzipper() : state_(new State) {
  // 15 window bits + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&state_->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    delete state_;
    throw std::bad_alloc();
  }
}

Gzipper::~Gzipper() {
  deflateEnd(&state_->z);
  delete state_;
}

std::string_view Gzipper::compress(std::string_view in) {
  z_stream& z = state_->z;
  deflateReset(&z);
  out_.resize(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out_.data());
  z.avail_out = static_cast<uInt>(out_.size());
  // deflateBound() leaves room for the whole member in one Z_FINISH call.
  deflate(&z, Z_FINISH);
  return std::string_view(out_.data(), z.total_out);
}

bool BodyRenderer::init(const Options& options, std::string& error) {
  options_ = options;
  if (options_.records == 0) options_.records = 1;
  if (!template_.compile(options_.record_template, error)) return false;
  if (options_.gzip) gzipper_ = std::make_unique<Gzipper>();
  return true;
}

std::string_view BodyRenderer::render(uint64_t index, int64_t now_ns) {
  ingestd::plugins::GeneratorRng rng(options_.seed * 0x9e3779b97f4a7c15ull + index);
  const bool array = options_.format == BodyFormat::kArray;
  raw_.clear();
  if (array) raw_ += '[';
  const uint64_t first = index * options_.records;
  for (uint32_t j = 0; j < options_.records; ++j) {
    if (array && j != 0) raw_ += ',';
    template_.render(raw_, rng, first + j, now_ns);  // appends
    if (!array) raw_ += '\n';
  }
  if (array) raw_ += ']';
  if (gzipper_) return gzipper_->compress(raw_);
  return raw_;
}

std::string_view BodyRenderer::content_type() const {
  return options_.format == BodyFormat::kArray ? "application/json" : "application/x-ndjson";
}

}  // namespace ingestd::loadgen
