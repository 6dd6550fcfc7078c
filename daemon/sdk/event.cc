#include "ingestd/event.h"

#include <cassert>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "ingestd/component.h"

namespace ingestd {

namespace {
constexpr size_t kDefaultArena = 64 * 1024;
constexpr size_t kSmallArena = 4 * 1024;  // a fan_out() copy's, for the bytes its consumer adds
}  // namespace

bool Value::to_double(double& out) const {
  switch (type) {
    case Type::kInt:
      out = static_cast<double>(i);
      return true;
    case Type::kDouble:
      out = d;
      return true;
    default:
      return false;
  }
}

void Value::append_text(std::string& out) const {
  char buf[32];
  switch (type) {
    case Type::kNull:
      out += "null";
      break;
    case Type::kBool:
      out += b ? "true" : "false";
      break;
    case Type::kInt: {
      auto r = std::to_chars(buf, buf + sizeof buf, i);
      out.append(buf, r.ptr);
      break;
    }
    case Type::kDouble: {
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      break;
    }
    case Type::kString:
    case Type::kRaw:
      out += s;
      break;
  }
}

bool Value::text_equals(std::string_view text) const {
  char buf[32];
  std::to_chars_result r{buf, std::errc()};
  switch (type) {
    case Type::kNull:
      return text == "null";
    case Type::kBool:
      return text == (b ? "true" : "false");
    case Type::kInt:
      r = std::to_chars(buf, buf + sizeof buf, i);
      break;
    case Type::kDouble:
      r = std::to_chars(buf, buf + sizeof buf, d);
      break;
    case Type::kString:
    case Type::kRaw:
      return same_text(s, text);
  }
  return r.ec == std::errc() && std::string_view(buf, r.ptr - buf) == text;
}

AckRef AckRef::make(std::function<void(bool ok)> done, Replay replay) {
  AckRef ref;
  ref.state_ = std::shared_ptr<AckState>(new AckState(std::move(done), replay == Replay::kYes));
  return ref;
}

AckRef AckRef::share() const {
  AckRef ref;
  ref.state_ = state_;
  ref.unresolved_ = unresolved_;
  return ref;
}

void AckRef::fail() {
  if (!state_) return;
  state_->failed_.store(true, std::memory_order_release);
  state_.reset();
}

void AckRef::abandon() {
  if (!state_) return;
  if (unresolved_) unresolved_->add();
  fail();
}

void Batch::resolve_acks(bool ok) {
  for (AckRef& ack : acks) ack.resolve(ok);
  acks.clear();
}

void Batch::attribute_acks(Counter* unresolved) {
  for (AckRef& ack : acks) ack.attribute(unresolved);
}

Batch::Batch() : Batch(kDefaultArena) {}

Batch::Batch(size_t initial_arena_bytes) : arena_(initial_arena_bytes) {}

char* Batch::allocate(size_t n) {
  auto* p = static_cast<char*>(arena_.allocate(n + kPadding, 1));
  std::memset(p + n, 0, kPadding);
  arena_bytes_ += n + kPadding;
  return p;
}

std::string_view Batch::copy(std::string_view bytes) {
  char* p = allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return {p, bytes.size()};
}

char* Batch::allocate_unpadded(size_t n) {
  arena_bytes_ += n;
  return static_cast<char*>(arena_.allocate(n, 1));
}

std::string_view Batch::copy_unpadded(std::string_view bytes) {
  if (bytes.empty()) return {};
  char* p = allocate_unpadded(bytes.size());
  std::memcpy(p, bytes.data(), bytes.size());
  return {p, bytes.size()};
}

void Batch::fields_not_contiguous() {
  throw std::logic_error("Batch::append_field: fields of an event must be added contiguously");
}

const Value* Batch::find(const Event& e, std::string_view key) const {
  for (const Field& f : fields(e))
    if (same_text(f.key, key)) return &f.value;
  return nullptr;
}

std::unique_ptr<Batch> Batch::clone() const {
  auto out = std::make_unique<Batch>(raw_bytes_ + fields_.size() * 16 + kDefaultArena);
  out->origin = origin;
  out->acks.reserve(acks.size());
  for (const AckRef& ack : acks) out->acks.push_back(ack.share());
  out->ingest_time_ns = ingest_time_ns;
  out->events_.reserve(events_.size());
  out->fields_.reserve(fields_.size());
  for (const Event& e : events_) {
    Event& c = out->add(out->copy(e.raw), e.time_ns);
    for (const Field& f : fields(e)) {
      Value v = f.value;
      if (v.type == Value::Type::kString || v.type == Value::Type::kRaw)
        v.s = out->copy_unpadded(v.s);
      out->append_field(c, out->copy_unpadded(f.key), v);
    }
  }
  return out;
}

std::vector<std::unique_ptr<Batch>> Batch::fan_out(std::unique_ptr<Batch> batch, size_t n) {
  std::vector<std::unique_ptr<Batch>> out;
  out.reserve(n);
  if (n == 1) {
    out.push_back(std::move(batch));
    return out;
  }
  std::vector<AckRef> acks = std::move(batch->acks);
  batch->acks.clear();
  const size_t held = batch->bytes();
  std::shared_ptr<const Batch> bytes(std::move(batch));
  for (size_t i = 0; i < n; ++i) {
    auto copy = std::make_unique<Batch>(kSmallArena);
    copy->origin = bytes->origin;
    copy->ingest_time_ns = bytes->ingest_time_ns;
    copy->raw_bytes_ = bytes->raw_bytes_;
    copy->events_ = bytes->events_;
    copy->fields_ = bytes->fields_;
    copy->keep_alive(bytes, held);
    copy->acks.reserve(acks.size());
    for (AckRef& ack : acks) copy->acks.push_back(i + 1 < n ? ack.share() : std::move(ack));
    out.push_back(std::move(copy));
  }
  return out;
}

}  // namespace ingestd
