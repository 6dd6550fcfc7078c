#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "ingestd/component.h"
#include "ingestd/event.h"

namespace ingestd::reliability {

// A sink's crash-safe disk spool: an append-only log of batches in one directory, written while
// the sink cannot take them and read back (claimed) to replay them.
//
// Layout: `lock` (flock; a second open of the directory fails), segment files named by a
// monotonically increasing sequence number (`00000000000000000001.seg`), and `cursor`, which
// remembers how far every record was delivered. A segment starts with a 12-byte header (magic
// "INGSPOOL", u32 format version); each record is a 20-byte header (u32 payload length, u32
// event count, u64 XXH3 of the payload seeded with length and count, u32 XXH3 of those 16 bytes)
// and the payload, encode_batch() of one batch. An append that would take the active segment
// past segment_size goes into a new one; a segment is deleted once every record in it is
// delivered and it is no longer appended to.
//
// Bounds: at most max_size bytes of segments. When an append would pass it, `when_full: block`
// writes nothing and returns kFull (the caller keeps the batch and waits), `drop_oldest` deletes
// whole oldest segments (never one with a record claimed) and reports their undelivered events
// as dropped, and returns kFull only when claimed segments leave no room. A batch is always
// admitted into an empty spool, so that one big batch cannot wedge it.
//
// Durability (`fsync`): always: fdatasync before append() returns; interval: when the last one
// was longer than fsync_interval ago by the injected clock's monotonic_ns, and whenever sync() is
// called (the caller calls it about every fsync_interval); never: the kernel's write-back only.
// The directory is fsynced after a segment is created or deleted, except with `never`.
//
// Reading: claim() hands out the oldest record not yet claimed, decoded; release() ends a claim:
// delivered, or back to be claimed again before any newer record (for a single claimer the order
// is exactly the append order). Several claims may be outstanding. A record whose checksum or
// decoding fails on read is never returned: it is skipped and counted in corrupt_records.
// Delivery is at least once across crashes: the cursor (write-to-temp and rename) is written
// every kCursorEvery deliveries and by close(); records delivered after its last write are
// replayed after a crash, and so are records delivered out of order ahead of an undelivered one.
//
// Recovery (open): never throws and never refuses over damaged data. A torn tail (a record cut
// short, or garbage after the last good record) is truncated; a record that fails its checksum
// is skipped and counted, with the records after it kept; a segment with a bad header, or a path
// that is not a regular file, is renamed to `*.bad` with the reason. Only a directory that cannot
// be created, locked or listed is an error (with the errno's text). Everything is reported in
// Recovery for the caller to log and count.
//
// Thread-safe: one mutex; disk I/O of one append or claim happens under it (cost per batch, never
// per event). Figures are read under the lock. The spool does no I/O of its own between calls.
// Not copyable; close() or the destructor ends it.
class Spool {
 public:
  struct Recovery {
    uint64_t segments = 0;                 // segment files kept
    uint64_t records = 0;                  // undelivered records found in them
    uint64_t events = 0;                   // their events
    uint64_t delivered_records = 0;        // records skipped because the cursor says delivered
    uint64_t torn_bytes = 0;               // bytes truncated from torn tails
    uint64_t corrupt_records = 0;          // records (or damaged stretches) skipped
    std::vector<std::string> moved_aside;  // "<file>.bad: <reason>"
    std::vector<std::string> problems;     // other damage worked around, one line each
  };

  enum class AppendStatus { kOk, kFull, kError };
  struct AppendResult {
    AppendStatus status = AppendStatus::kOk;
    uint64_t dropped_events = 0;  // drop_oldest: undelivered events deleted to make room
    std::string error;            // kError: what failed, with the errno's text
  };

  struct Claim {
    uint64_t segment = 0;  // which record: for release()
    uint32_t index = 0;
    BatchPtr batch;  // decoded; has no acks
    uint32_t events = 0;
  };

  struct Totals {
    uint64_t appended_events = 0;
    uint64_t delivered_events = 0;
    uint64_t dropped_events = 0;
    uint64_t corrupt_records = 0;  // found on open and on read
  };

  static constexpr uint32_t kFormatVersion = 1;
  static constexpr uint64_t kCursorEvery = 64;  // deliveries between two cursor writes

  // Creates `dir` (mode 0750) if needed, locks it and recovers what is in it. nullptr with a
  // message in `error` when the directory is unusable. `clock` must outlive the spool.
  static std::unique_ptr<Spool> open(const std::filesystem::path& dir,
                                     const config::SpoolConfig& config, const Clock& clock,
                                     Recovery& report, std::string& error);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  AppendResult append(const Batch& batch);
  std::optional<Claim> claim();
  void release(const Claim& claim, bool delivered);
  // fdatasync what was appended and not yet synced (for `fsync: interval`; no-op with never).
  void sync();
  // Syncs per the policy, writes the cursor and closes the files. Later calls fail (append
  // returns kError, claim nothing). Idempotent.
  void close();

  // Undelivered (pending or claimed) records and their events; bytes and segments on disk.
  uint64_t records() const;
  uint64_t events() const;
  uint64_t bytes() const;
  // When the oldest segment still holding undelivered records was started (wall clock, ns; for
  // a segment recovered from disk, when it was last written), 0 when nothing is pending: the
  // age of what waits, to a segment's granularity.
  int64_t oldest_ns() const;
  uint64_t segments() const;
  Totals totals() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  enum class State : uint8_t { kPending, kClaimed, kDelivered };
  struct Record {
    uint64_t offset;  // of its header in the segment file
    uint32_t length;  // payload bytes
    uint32_t events;
    State state;
  };
  struct Segment {
    std::filesystem::path path;
    uint64_t size = 0;       // bytes in the file
    int64_t created_ns = 0;  // wall clock; see oldest_ns()
    std::vector<Record> records;
    uint64_t delivered = 0;
    uint64_t claimed = 0;
  };
  using Key = std::pair<uint64_t, uint32_t>;  // (segment, index)

  Spool(std::filesystem::path dir, const config::SpoolConfig& config, const Clock& clock,
        int lock_fd);

  void recover(Recovery& report);
  void scan_segment(std::string_view data, Segment& segment, int fd, Recovery& report);
  void move_aside(const std::filesystem::path& path, const std::string& reason, Recovery& report);
  bool read_cursor(uint64_t& seq, uint64_t& offset, Recovery& report);
  void write_cursor();
  bool open_segment(std::string& error);
  void close_active();
  void drop_segment(std::map<uint64_t, Segment>::iterator it, AppendResult& result);
  void deliver(Segment& segment, Record& record);
  void maybe_delete(uint64_t seq);
  bool next_key(Key& key);
  bool read_record(uint64_t seq, const Record& record, std::string& payload, std::string& why);
  void sync_dir();
  void datasync_locked();

  const std::filesystem::path dir_;
  const config::SpoolConfig config_;
  const Clock& clock_;

  mutable std::mutex mu_;
  int lock_fd_ = -1;
  bool closed_ = false;
  std::map<uint64_t, Segment> segments_;  // by sequence number, oldest first
  uint64_t next_seq_ = 1;
  uint64_t active_seq_ = 0;  // 0: none; appends go into a new segment
  int active_fd_ = -1;
  bool dirty_ = false;  // appended since the last fdatasync
  int64_t last_sync_ns_ = 0;
  uint64_t read_fd_seq_ = 0;
  int read_fd_ = -1;
  Key read_next_{0, 0};     // where the next fresh claim is looked for
  std::set<Key> returned_;  // released undelivered: claimed again first, oldest first
  uint64_t disk_bytes_ = 0;
  uint64_t pending_records_ = 0;
  uint64_t pending_events_ = 0;
  uint64_t since_cursor_ = 0;                        // deliveries since the cursor was written
  std::pair<uint64_t, uint64_t> last_cursor_{0, 0};  // (segment, offset) last written
  Totals totals_;
};

}  // namespace ingestd::reliability
