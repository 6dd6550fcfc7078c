// Events, batches and acknowledgements: the data that flows between components.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ingestd {

// a == b for short texts such as field names, in line: for up to 16 bytes, two overlapping loads
// of each text (the first and the last 8, 4 or 1 bytes, never past its end) and one compare,
// whatever the length; that is faster than the call to memcmp that std::string_view's == makes,
// and than a loop whose exit depends on the length.
inline bool same_text(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  if (n >= 8) {
    if (n > 16) return a == b;
    uint64_t x0, x1, y0, y1;
    std::memcpy(&x0, x, 8);
    std::memcpy(&x1, x + n - 8, 8);
    std::memcpy(&y0, y, 8);
    std::memcpy(&y1, y + n - 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n >= 4) {
    uint32_t x0, x1, y0, y1;
    std::memcpy(&x0, x, 4);
    std::memcpy(&x1, x + n - 4, 4);
    std::memcpy(&y0, y, 4);
    std::memcpy(&y1, y + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  // 0 to 3 bytes: the first, the middle and the last.
  return n == 0 || ((x[0] ^ y[0]) | (x[n / 2] ^ y[n / 2]) | (x[n - 1] ^ y[n - 1])) == 0;
}

// A field value. Strings and raw JSON are views into the owning batch's arena (or into another
// buffer that outlives the batch); a Value never owns memory.
struct Value {
  enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kString, kRaw };

  Type type = Type::kNull;
  union {
    bool b;
    int64_t i;
    double d;
  };
  std::string_view s;  // kString: the unescaped text; kRaw: a JSON array or object as written

  Value() : i(0) {}
  static Value null() { return {}; }
  static Value boolean(bool v) {
    Value x;
    x.type = Type::kBool;
    x.b = v;
    return x;
  }
  static Value integer(int64_t v) {
    Value x;
    x.type = Type::kInt;
    x.i = v;
    return x;
  }
  static Value number(double v) {
    Value x;
    x.type = Type::kDouble;
    x.d = v;
    return x;
  }
  static Value string(std::string_view v) {
    Value x;
    x.type = Type::kString;
    x.s = v;
    return x;
  }
  static Value raw(std::string_view v) {
    Value x;
    x.type = Type::kRaw;
    x.s = v;
    return x;
  }

  bool is_number() const { return type == Type::kInt || type == Type::kDouble; }
  // The value as a double for numeric metrics; false when it is not a number.
  bool to_double(double& out) const;
  // Appends a canonical text form used for grouping and equality filters: strings as they are,
  // integers in decimal, doubles in shortest round-trip form, true/false, null, raw JSON as
  // written.
  void append_text(std::string& out) const;
  // True when append_text() would produce exactly `text` (no allocation).
  bool text_equals(std::string_view text) const;
};

struct Field {
  std::string_view key;  // flat key; nested objects are flattened to dotted paths ("a.b.c")
  Value value;
};

// One record. `raw` holds the bytes it was read as, so that a sink can write the original
// unchanged; its fields live in the owning batch (Batch::fields()).
struct Event {
  int64_t time_ns = 0;  // event time where a parser found one, else ingest time
  std::string_view raw;
  uint32_t first_field = 0;
  uint32_t field_count = 0;
};

class Counter;

// The shared state of one acknowledgement: its callback and whether a holder failed. Made only by
// AckRef::make() and reached only through AckRefs; see there.
class AckState {
 public:
  ~AckState() {
    if (done_) done_(!failed_.load(std::memory_order_acquire));
  }
  AckState(const AckState&) = delete;
  AckState& operator=(const AckState&) = delete;

 private:
  friend class AckRef;
  AckState(std::function<void(bool ok)> done, bool replayable)
      : replayable_(replayable), done_(std::move(done)) {}

  std::atomic<bool> failed_{false};
  const bool replayable_;
  std::function<void(bool)> done_;
};

// One holder's part in an acknowledgement: success is explicit, never the default.
//
// A source makes an acknowledgement per unit it wants to hear back about (an HTTP request, a
// Kafka offset range, a file position) with AckRef::make(done), and puts that ref, or more refs
// from share(), into its batches (Batch::acks). Each ref is one holder. `done(ok)` runs exactly
// once, when the last holder has let go, with ok == true only when every holder resolved with
// ok(). A holder resolves once:
// - ok(): its part is done durably (a sink wrote, delivered or spooled the batch; an aggregator's
//   output that carries the data was so taken; the data was set aside on purpose, e.g. filtered
//   out or durably dead-lettered as malformed);
// - fail(): its part is lost or refused (a dead-lettered write, a queue that dropped it, a
//   shutdown that discarded it);
// - neither: a ref destroyed or assigned over while it still holds counts as fail(), and adds one
//   to the counter given to attribute(). The core attributes every batch's refs to the component
//   that holds the batch (`<component>.acks_unresolved`), so a batch that is lost anywhere (a
//   component that throws, an output nothing reads, a state discarded) reports failure and is
//   counted, instead of reporting success.
// Where the batch goes the refs go: Batch::fan_out() and clone() share them (one more holder per
// copy); an aggregator moves a consumed batch's refs into its state and from there into the
// output batches that carry the result (share() when one result spans several batches).
//
// Thread safety: a ref is used by one thread at a time (it travels with its batch); refs of one
// acknowledgement may be resolved on different threads at once. `done` runs on the thread that
// resolves the last ref: keep it short, thread-safe and non-throwing. That can be the source's
// own thread inside Output::push() or try_push() (a batch dropped by a full queue, or spooled at
// once), so `done` must not take a lock the source holds while it pushes. A plugin must not be
// unloaded while its callbacks may still run; the core unloads plugins only after the whole graph
// has stopped.
//
// Replay: a source that delivers the same data again when its acknowledgement fails (a Kafka
// consumer that commits only acknowledged offsets, a file source that resumes from its checkpoint)
// says so with Replay::kYes. A component holding such data at shutdown may then fail the refs
// instead of passing on a partial result: an aggregator drops its open windows, which the next run
// recomputes from the replayed input, rather than emitting them cut short.
class AckRef {
 public:
  enum class Replay : uint8_t { kNo, kYes };

  AckRef() = default;  // holds nothing: every call is a no-op
  // A new acknowledgement, and its first holder.
  static AckRef make(std::function<void(bool ok)> done, Replay replay = Replay::kNo);
  AckRef(AckRef&& other) noexcept
      : state_(std::move(other.state_)), unresolved_(other.unresolved_) {}
  AckRef& operator=(AckRef&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
      unresolved_ = other.unresolved_;
    }
    return *this;
  }
  AckRef(const AckRef&) = delete;
  AckRef& operator=(const AckRef&) = delete;
  ~AckRef() { abandon(); }

  // Another holder of the same acknowledgement, with the same attribution. Empty when this one
  // no longer holds.
  AckRef share() const;
  void ok() { state_.reset(); }
  void fail();
  void resolve(bool ok) { ok ? this->ok() : fail(); }
  // True while it holds (not yet resolved).
  bool holds() const { return state_ != nullptr; }
  // True while it holds data that its source delivers again should the acknowledgement fail.
  bool replayable() const { return state_ && state_->replayable_; }
  // The counter that a drop without a verdict adds to (nullptr: none). The core sets it.
  void attribute(Counter* unresolved) { unresolved_ = unresolved; }

 private:
  void abandon();  // a drop without a verdict: fails and counts

  std::shared_ptr<AckState> state_;
  Counter* unresolved_ = nullptr;
};

// Where a batch came from.
struct Origin {
  std::string component;
  std::optional<std::string> topic;
  std::optional<int32_t> partition;
  std::optional<int64_t> offset;      // of the first event (e.g. a Kafka offset)
  std::optional<int64_t> end_offset;  // one past the last event's offset, with `offset`
  std::optional<std::string> key;
  // The instance that handed the batch on, for a component whose instances hand batches of one
  // stream on out of order between them (in order within one): worker in 0 .. workers - 1, and
  // the component's name in `parser`. workers 0: in order. The core's parsers hand their
  // batches on in order whatever their `workers`, so the core leaves these at 0.
  std::string parser;
  uint32_t worker = 0;
  uint32_t workers = 0;
};

// A batch of events and the arena that holds their bytes.
//
// Contract:
// - Single owner: a batch travels as std::unique_ptr<Batch> and is touched by one thread at a
//   time. Fan-out to several consumers hands each a copy from fan_out(), which shares the
//   bytes: every byte a view points to stays as it was written for the batch's life.
// - Acknowledgement: `acks` holds the batch's refs. Whoever ends a batch's journey resolves them
//   (a sink's core wrapper, a queue that drops it, a parser that fails it); a batch destroyed with
//   refs still holding fails them (see AckRef).
// - Memory: bytes live in a monotonic arena released only when the batch is destroyed; events and
//   fields are in two vectors. Adding an event costs no allocation beyond amortised vector growth
//   and arena blocks.
// - Padding: every buffer returned by allocate() or copy() is followed by kPadding readable zero
//   bytes, so a view into it may be handed to simdjson without copying: use them for raw
//   records. allocate_unpadded() and copy_unpadded() leave the padding out, for bytes nobody
//   parses in place: field keys and values, which are never handed to simdjson.
// - Shared buffers: views may also point into a buffer the batch keeps alive (keep_alive()), such
//   as a source's read buffer shared by consecutive batches. Such a buffer must end with kPadding
//   readable bytes too. Its size counts in bytes().
// - Fields of one event are contiguous: add fields to an event only while it is the last event
//   whose fields were added (append_field checks this).
class Batch {
 public:
  static constexpr size_t kPadding = 64;

  Batch();
  explicit Batch(size_t initial_arena_bytes);
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Arena memory of n bytes plus kPadding zero bytes after them.
  char* allocate(size_t n);
  // Copies bytes into the arena (padded); returns the view of the copy.
  std::string_view copy(std::string_view bytes);
  // As allocate() and copy(), without the padding: for field keys and values.
  char* allocate_unpadded(size_t n);
  std::string_view copy_unpadded(std::string_view bytes);

  // Keeps `buffer` (of `size` bytes) alive as long as this batch. clone() copies the bytes instead.
  void keep_alive(std::shared_ptr<const void> buffer, size_t size) {
    buffers_.push_back(std::move(buffer));
    shared_bytes_ += size;
  }
  // Capacity for events and fields, so that filling a batch does not reallocate.
  void reserve(size_t events, size_t fields) {
    events_.reserve(events);
    fields_.reserve(fields);
  }

  // In line, as append_field(): sources and parsers call them once per event and per field.
  Event& add(std::string_view raw, int64_t time_ns) {
    raw_bytes_ += raw.size();
    return events_.emplace_back(Event{time_ns, raw, static_cast<uint32_t>(fields_.size()), 0});
  }
  void append_field(Event& event, std::string_view key, Value value) {
    append_field(event, key) = value;
  }
  // As append_field() with a null value, returned to be set in place (a parser writing it there
  // saves copying it); the reference is valid until the batch's next field is added.
  Value& append_field(Event& event, std::string_view key) {
    if (event.field_count == 0) {
      event.first_field = static_cast<uint32_t>(fields_.size());
    } else if (event.first_field + event.field_count != fields_.size()) {
      fields_not_contiguous();
    }
    ++event.field_count;
    // Member by member: a Field built whole and copied in is a 16-byte load of narrower stores
    // just made, which stalls store forwarding; this is the parsers' hottest call.
    Field& field = fields_.emplace_back();
    field.key = key;
    return field.value;
  }
  // Keeps only the events for which keep(event) is true, in order. Fields stay where they are.
  template <class Pred>
  size_t retain(Pred keep) {
    size_t out = 0;
    for (size_t i = 0; i < events_.size(); ++i)
      if (keep(events_[i])) events_[out++] = events_[i];
    size_t removed = events_.size() - out;
    events_.resize(out);
    return removed;
  }

  std::span<Event> events() { return events_; }
  std::span<const Event> events() const { return events_; }
  std::span<const Field> fields(const Event& e) const {
    return {fields_.data() + e.first_field, e.field_count};
  }
  const Value* find(const Event& e, std::string_view key) const;
  size_t size() const { return events_.size(); }
  bool empty() const { return events_.empty(); }
  // Memory this batch holds: arena bytes plus event and field storage. Queues bound by this.
  size_t bytes() const {
    return arena_bytes_ + shared_bytes_ + events_.capacity() * sizeof(Event) +
           fields_.capacity() * sizeof(Field);
  }
  // Bytes of raw event data (what a source read); used for batch size limits.
  size_t raw_bytes() const { return raw_bytes_; }

  // A deep copy into a fresh arena; its acks are shared (AckRef::share()): one holder more each.
  std::unique_ptr<Batch> clone() const;
  // n batches (n >= 1) with the events, fields, origin and ingest time of `batch`, for n
  // consumers: each has its own events and fields (to filter or add to, and its own arena for new
  // bytes), and all share `batch`'s bytes, which live until the last of them is destroyed. The
  // acks go to the copies, shared: n holders where `batch` was one. Costs a copy of the event and
  // field arrays per batch, none of the bytes. With n == 1, `batch` itself.
  static std::vector<std::unique_ptr<Batch>> fan_out(std::unique_ptr<Batch> batch, size_t n);

  // Resolves every ref in `acks` with ok() or fail() and empties it.
  void resolve_acks(bool ok);
  // Core: attributes every ref in `acks` to `unresolved` (see AckRef::attribute()).
  void attribute_acks(Counter* unresolved);

  Origin origin;
  std::vector<AckRef> acks;  // the holders this batch is (see AckRef)
  int64_t ingest_time_ns = 0;

 private:
  std::pmr::monotonic_buffer_resource arena_;
  size_t arena_bytes_ = 0;
  size_t raw_bytes_ = 0;
  size_t shared_bytes_ = 0;
  std::vector<std::shared_ptr<const void>> buffers_;
  std::vector<Event> events_;
  std::vector<Field> fields_;

  [[noreturn]] static void fields_not_contiguous();
};

using BatchPtr = std::unique_ptr<Batch>;

}  // namespace ingestd
