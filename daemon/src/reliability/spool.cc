#include "reliability/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <limits>
#include <system_error>

#include <fmt/format.h>
#include <xxhash.h>

#include "ingestd/batch_codec.h"

namespace ingestd::reliability {
namespace {

namespace fs = std::filesystem;
using Fsync = config::SpoolConfig::Fsync;

constexpr char kMagic[8] = {'I', 'N', 'G', 'S', 'P', 'O', 'O', 'L'};
constexpr uint64_t kSegmentHeader = 12;  // magic, u32 version
constexpr uint64_t kRecordHeader = 20;   // u32 length, u32 events, u64 payload hash, u32 check
constexpr char kCursorTag[] = "ingestd-spool-cursor";
// Sequence numbers beyond this are not ours (a damaged name or cursor): they would overflow.
constexpr uint64_t kMaxSequence = uint64_t{1} << 62;

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string segment_name(uint64_t seq) {
  return fmt::format("{:020}.seg", seq);
}

// The sequence number of a `<20 digits>.seg` name (with `suffix` after it, e.g. ".bad").
bool parse_sequence(const std::string& name, std::string_view suffix, uint64_t& seq) {
  if (name.size() != 20 + 4 + suffix.size() || name.compare(20, 4, ".seg") != 0 ||
      name.compare(24, std::string::npos, suffix) != 0)
    return false;
  auto [end, ec] = std::from_chars(name.data(), name.data() + 20, seq);
  return ec == std::errc() && end == name.data() + 20 && seq <= kMaxSequence;
}

void put_le(char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

uint64_t payload_hash(const char* payload, uint32_t length, uint32_t events) {
  return XXH3_64bits_withSeed(payload, length, (uint64_t{length} << 32) | events);
}

uint32_t header_check(const char* header) {
  return static_cast<uint32_t>(XXH3_64bits(header, 16));
}

// The record at `pos` of `data`, if its header and payload check out.
bool valid_record(std::string_view data, uint64_t pos, uint32_t& length, uint32_t& events) {
  if (data.size() < kRecordHeader || pos > data.size() - kRecordHeader) return false;
  const char* h = data.data() + pos;
  if (get_le(h + 16, 4) != header_check(h)) return false;
  length = static_cast<uint32_t>(get_le(h, 4));
  events = static_cast<uint32_t>(get_le(h + 4, 4));
  if (length > data.size() - pos - kRecordHeader) return false;
  return get_le(h + 8, 8) == payload_hash(h + kRecordHeader, length, events);
}

bool write_all(int fd, const char* p, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return true;
}

bool read_all(int fd, char* p, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;  // shorter than the index says: the file changed underneath
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

// The whole file, or false with errno set.
bool read_file(int fd, std::string& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  out.resize(static_cast<size_t>(st.st_size));
  return read_all(fd, out.data(), out.size(), 0);
}

}  // namespace

std::unique_ptr<Spool> Spool::open(const std::filesystem::path& dir,
                                   const config::SpoolConfig& config, const Clock& clock,
                                   Recovery& report, std::string& error) {
  std::error_code ec;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (ec) {
    error = fmt::format("spool directory {}: cannot create {}: {}", dir.string(),
                        dir.parent_path().string(), ec.message());
    return nullptr;
  }
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    error =
        fmt::format("spool directory {}: cannot create it: {}", dir.string(), errno_text(errno));
    return nullptr;
  }
  fs::path lock_path = dir / "lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    error = fmt::format("spool directory {}: cannot open {}: {}", dir.string(), lock_path.string(),
                        errno_text(errno));
    return nullptr;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    error = err == EWOULDBLOCK
                ? fmt::format(
                      "spool directory {} is in use: another process (or another spool in "
                      "this one) holds the lock on {}",
                      dir.string(), lock_path.string())
                : fmt::format("spool directory {}: cannot lock {}: {}", dir.string(),
                              lock_path.string(), errno_text(err));
    return nullptr;
  }
  fs::directory_iterator list(dir, ec);
  if (ec) {
    ::close(fd);
    error = fmt::format("spool directory {}: cannot list it: {}", dir.string(), ec.message());
    return nullptr;
  }
  std::unique_ptr<Spool> spool(new Spool(dir, config, clock, fd));
  report = Recovery{};
  spool->recover(report);
  return spool;
}

Spool::Spool(std::filesystem::path dir, const config::SpoolConfig& config, const Clock& clock,
             int lock_fd)
    : dir_(std::move(dir)),
      config_(config),
      clock_(clock),
      lock_fd_(lock_fd),
      last_sync_ns_(clock.monotonic_ns()) {}

Spool::~Spool() {
  close();
}

void Spool::recover(Recovery& report) {
  uint64_t cursor_seq = 0;
  uint64_t cursor_offset = 0;
  bool have_cursor = read_cursor(cursor_seq, cursor_offset, report);

  std::vector<uint64_t> found;
  uint64_t highest = have_cursor ? cursor_seq : 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    uint64_t seq = 0;
    if (parse_sequence(name, "", seq)) {
      found.push_back(seq);
      highest = std::max(highest, seq);
    } else if (parse_sequence(name, ".bad", seq)) {
      highest = std::max(highest, seq);
    }
  }
  if (ec)
    report.problems.push_back(fmt::format("listing {} stopped: {}", dir_.string(), ec.message()));
  std::sort(found.begin(), found.end());
  next_seq_ = highest + 1;

  for (uint64_t seq : found) {
    fs::path path = dir_ / segment_name(seq);
    if (have_cursor && seq < cursor_seq) {
      // Delivered before the cursor was written; its deletion did not reach the disk.
      if (fs::is_regular_file(fs::symlink_status(path, ec))) {
        fs::remove(path, ec);
        continue;
      }
    }
    if (!fs::is_regular_file(fs::symlink_status(path, ec))) {
      move_aside(path, "not a regular file", report);
      continue;
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      move_aside(path, fmt::format("cannot open it: {}", errno_text(errno)), report);
      continue;
    }
    Segment segment;
    segment.path = path;
    std::string data;
    if (!read_file(fd, data)) {
      std::string why = fmt::format("cannot read it: {}", errno_text(errno));
      ::close(fd);
      move_aside(path, why, report);
      continue;
    }
    if (data.size() < kSegmentHeader) {
      ::close(fd);
      if (seq == found.back()) {  // created by the last run just before it stopped
        report.torn_bytes += data.size();
        fs::remove(path, ec);
      } else {
        move_aside(path, fmt::format("{} bytes, shorter than a segment header", data.size()),
                   report);
      }
      continue;
    }
    uint64_t version = get_le(data.data() + 8, 4);
    if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0 || version != kFormatVersion) {
      ::close(fd);
      move_aside(path,
                 std::memcmp(data.data(), kMagic, sizeof kMagic) != 0
                     ? std::string("no spool segment header (bad magic)")
                     : fmt::format("segment format version {}; this build reads {}", version,
                                   kFormatVersion),
                 report);
      continue;
    }
    scan_segment(data, segment, fd, report);
    ::close(fd);
    for (Record& r : segment.records) {
      if (have_cursor && seq == cursor_seq && r.offset < cursor_offset) {
        r.state = State::kDelivered;
        ++segment.delivered;
        ++report.delivered_records;
      } else {
        ++report.records;
        report.events += r.events;
        ++pending_records_;
        pending_events_ += r.events;
      }
    }
    if (segment.delivered == segment.records.size()) {
      fs::remove(path, ec);
      continue;
    }
    ++report.segments;
    disk_bytes_ += segment.size;
    // Its creation is not recorded: its last change is the nearest bound (for oldest_ns()).
    if (auto t = fs::last_write_time(path, ec); !ec)
      segment.created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::file_clock::to_sys(t).time_since_epoch())
                               .count();
    segments_.emplace(seq, std::move(segment));
  }
  totals_.corrupt_records = report.corrupt_records;
  if (!segments_.empty()) read_next_ = {segments_.begin()->first, 0};
  sync_dir();
}

void Spool::scan_segment(std::string_view data, Segment& segment, int fd, Recovery& report) {
  uint64_t pos = kSegmentHeader;
  while (pos < data.size()) {
    uint32_t length = 0;
    uint32_t events = 0;
    if (valid_record(data, pos, length, events)) {
      segment.records.push_back(Record{pos, length, events, State::kPending});
      pos += kRecordHeader + length;
      continue;
    }
    // Damaged at pos. When the damage reaches the end of the file it is a torn tail: a write cut
    // short by a crash. Otherwise the next record that checks out is where reading resumes.
    uint64_t resume = 0;
    if (data.size() - pos >= kRecordHeader &&
        get_le(data.data() + pos + 16, 4) == header_check(data.data() + pos)) {
      uint64_t after = pos + kRecordHeader + get_le(data.data() + pos, 4);
      uint32_t l = 0;
      uint32_t e = 0;
      if (after < data.size() && valid_record(data, after, l, e)) resume = after;
    }
    for (uint64_t q = pos + 1; resume == 0 && q + kRecordHeader <= data.size(); ++q) {
      uint32_t l = 0;
      uint32_t e = 0;
      if (valid_record(data, q, l, e)) resume = q;
    }
    if (resume == 0) {
      report.torn_bytes += data.size() - pos;
      if (::ftruncate(fd, static_cast<off_t>(pos)) != 0) {
        report.problems.push_back(fmt::format("{}: cannot truncate the torn tail at byte {}: {}",
                                              segment.path.string(), pos, errno_text(errno)));
      }
      data = data.substr(0, pos);
      break;
    }
    ++report.corrupt_records;
    pos = resume;
  }
  segment.size = data.size();
}

void Spool::move_aside(const std::filesystem::path& path, const std::string& reason,
                       Recovery& report) {
  fs::path bad = path;
  bad += ".bad";
  std::error_code ec;
  fs::rename(path, bad, ec);
  if (ec) {
    report.problems.push_back(fmt::format("{}: {}; cannot rename it to {}: {}; left in place",
                                          path.string(), reason, bad.filename().string(),
                                          ec.message()));
    return;
  }
  report.moved_aside.push_back(fmt::format("{}: {}", bad.string(), reason));
}

bool Spool::read_cursor(uint64_t& seq, uint64_t& offset, Recovery& report) {
  fs::path path = dir_ / "cursor";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      report.problems.push_back(
          fmt::format("{}: {}; replaying from the start", path.string(), errno_text(errno)));
    return false;
  }
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  std::string_view text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  // "ingestd-spool-cursor 1 <segment> <offset>\n"
  std::string expect = fmt::format("{} {} ", kCursorTag, kFormatVersion);
  bool ok =
      text.size() > expect.size() && text.substr(0, expect.size()) == expect && text.back() == '\n';
  if (ok) {
    const char* p = text.data() + expect.size();
    const char* end = text.data() + text.size() - 1;
    auto a = std::from_chars(p, end, seq);
    ok = a.ec == std::errc() && a.ptr < end && *a.ptr == ' ';
    if (ok) {
      auto b = std::from_chars(a.ptr + 1, end, offset);
      ok = b.ec == std::errc() && b.ptr == end && seq <= kMaxSequence;
    }
  }
  if (!ok)
    report.problems.push_back(
        fmt::format("{}: not a spool cursor; replaying from the start", path.string()));
  return ok;
}

void Spool::write_cursor() {
  since_cursor_ = 0;
  uint64_t seq = next_seq_;
  uint64_t offset = 0;
  for (const auto& [s, segment] : segments_) {
    auto it = std::find_if(segment.records.begin(), segment.records.end(),
                           [](const Record& r) { return r.state != State::kDelivered; });
    if (it != segment.records.end()) {
      seq = s;
      offset = it->offset;
      break;
    }
  }
  if (std::pair{seq, offset} == last_cursor_) return;
  std::string text = fmt::format("{} {} {} {}\n", kCursorTag, kFormatVersion, seq, offset);
  fs::path tmp = dir_ / "cursor.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return;  // the cursor only saves replays; the next write tries again
  bool ok = write_all(fd, text.data(), text.size(), 0) &&
            (config_.fsync == Fsync::kNever || ::fdatasync(fd) == 0);
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), (dir_ / "cursor").c_str()) == 0) {
    last_cursor_ = {seq, offset};
    sync_dir();
  }
}

bool Spool::open_segment(std::string& error) {
  uint64_t seq = next_seq_++;
  fs::path path = dir_ / segment_name(seq);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    error = fmt::format("cannot create {}: {}", path.string(), errno_text(errno));
    return false;
  }
  char header[kSegmentHeader];
  std::memcpy(header, kMagic, sizeof kMagic);
  put_le(header + 8, kFormatVersion, 4);
  if (!write_all(fd, header, sizeof header, 0)) {
    error = fmt::format("cannot write {}: {}", path.string(), errno_text(errno));
    ::close(fd);
    ::unlink(path.c_str());
    return false;
  }
  Segment segment;
  segment.path = path;
  segment.size = kSegmentHeader;
  segment.created_ns = clock_.now_ns();
  segments_.emplace(seq, std::move(segment));
  disk_bytes_ += kSegmentHeader;
  active_seq_ = seq;
  active_fd_ = fd;
  dirty_ = true;
  sync_dir();
  return true;
}

void Spool::close_active() {
  if (active_fd_ < 0) return;
  if (dirty_ && config_.fsync != Fsync::kNever) ::fdatasync(active_fd_);
  dirty_ = false;
  ::close(active_fd_);
  active_fd_ = -1;
  uint64_t seq = active_seq_;
  active_seq_ = 0;
  maybe_delete(seq);
}

Spool::AppendResult Spool::append(const Batch& batch) {
  AppendResult result;
  std::string record(kRecordHeader, '\0');
  encode_batch(batch, record);
  uint64_t length = record.size() - kRecordHeader;
  if (length > std::numeric_limits<uint32_t>::max() ||
      batch.size() > std::numeric_limits<uint32_t>::max()) {
    result.status = AppendStatus::kError;
    result.error = fmt::format("a batch of {} bytes is too large for one spool record", length);
    return result;
  }
  auto events = static_cast<uint32_t>(batch.size());
  char* h = record.data();
  put_le(h, length, 4);
  put_le(h + 4, events, 4);
  put_le(h + 8, payload_hash(h + kRecordHeader, static_cast<uint32_t>(length), events), 8);
  put_le(h + 16, header_check(h), 4);

  std::lock_guard lock(mu_);
  if (closed_) {
    result.status = AppendStatus::kError;
    result.error = "the spool is closed";
    return result;
  }
  auto fits_active = [&] {
    if (active_seq_ == 0) return false;
    const Segment& a = segments_.at(active_seq_);
    return a.records.empty() || a.size + record.size() <= config_.segment_size;
  };
  auto needed = [&] { return record.size() + (fits_active() ? 0 : kSegmentHeader); };
  if (disk_bytes_ > 0 && disk_bytes_ + needed() > config_.max_size) {
    if (config_.when_full == config::SpoolConfig::SpoolFull::kBlock) {
      result.status = AppendStatus::kFull;
      return result;
    }
    for (auto it = segments_.begin();
         it != segments_.end() && disk_bytes_ > 0 && disk_bytes_ + needed() > config_.max_size;) {
      auto next = std::next(it);
      if (it->second.claimed == 0) drop_segment(it, result);
      it = next;
    }
    if (disk_bytes_ > 0 && disk_bytes_ + needed() > config_.max_size) {
      result.status = AppendStatus::kFull;
      return result;
    }
  }
  if (!fits_active()) {
    close_active();
    if (!open_segment(result.error)) {
      result.status = AppendStatus::kError;
      return result;
    }
  }
  Segment& segment = segments_.at(active_seq_);
  if (!write_all(active_fd_, record.data(), record.size(), segment.size)) {
    result.status = AppendStatus::kError;
    result.error = fmt::format("cannot write {}: {}", segment.path.string(), errno_text(errno));
    if (::ftruncate(active_fd_, static_cast<off_t>(segment.size)) != 0) {
      // What was written of the record stays as a torn tail that recovery removes; later
      // records go into a new segment, so that none follows it.
      close_active();
    }
    return result;
  }
  if (config_.fsync == Fsync::kAlways && ::fdatasync(active_fd_) != 0) {
    result.status = AppendStatus::kError;
    result.error = fmt::format("cannot sync {}: {}", segment.path.string(), errno_text(errno));
    if (::ftruncate(active_fd_, static_cast<off_t>(segment.size)) != 0) close_active();
    return result;
  }
  segment.records.push_back(
      Record{segment.size, static_cast<uint32_t>(length), events, State::kPending});
  segment.size += record.size();
  disk_bytes_ += record.size();
  ++pending_records_;
  pending_events_ += events;
  totals_.appended_events += events;
  dirty_ = config_.fsync != Fsync::kAlways;
  int64_t now = clock_.monotonic_ns();
  if (config_.fsync == Fsync::kInterval && now - last_sync_ns_ >= config_.fsync_interval_ns)
    datasync_locked();
  return result;
}

void Spool::drop_segment(std::map<uint64_t, Segment>::iterator it, AppendResult& result) {
  uint64_t seq = it->first;
  Segment& segment = it->second;
  for (Record& r : segment.records) {
    if (r.state == State::kDelivered) continue;
    result.dropped_events += r.events;
    totals_.dropped_events += r.events;
    --pending_records_;
    pending_events_ -= r.events;
    r.state = State::kDelivered;
  }
  segment.delivered = segment.records.size();
  returned_.erase(returned_.lower_bound({seq, 0}), returned_.lower_bound({seq + 1, 0}));
  if (seq == active_seq_) {
    close_active();  // deletes it: every record counts as delivered now
  } else {
    maybe_delete(seq);
  }
}

void Spool::deliver(Segment& segment, Record& record) {
  record.state = State::kDelivered;
  ++segment.delivered;
  --pending_records_;
  pending_events_ -= record.events;
  ++since_cursor_;
}

void Spool::maybe_delete(uint64_t seq) {
  auto it = segments_.find(seq);
  if (it == segments_.end() || seq == active_seq_ ||
      it->second.delivered != it->second.records.size())
    return;
  if (read_fd_seq_ == seq && read_fd_ >= 0) {
    ::close(read_fd_);
    read_fd_ = -1;
  }
  ::unlink(it->second.path.c_str());
  disk_bytes_ -= it->second.size;
  segments_.erase(it);
  sync_dir();
}

bool Spool::next_key(Key& key) {
  if (!returned_.empty()) {
    key = *returned_.begin();
    returned_.erase(returned_.begin());
    return true;
  }
  for (auto it = segments_.lower_bound(read_next_.first); it != segments_.end(); ++it) {
    const std::vector<Record>& records = it->second.records;
    size_t i = it->first == read_next_.first ? read_next_.second : 0;
    for (; i < records.size(); ++i) {
      if (records[i].state == State::kPending) {
        key = {it->first, static_cast<uint32_t>(i)};
        read_next_ = {it->first, static_cast<uint32_t>(i + 1)};
        return true;
      }
    }
    read_next_ = {it->first, static_cast<uint32_t>(records.size())};
  }
  return false;
}

bool Spool::read_record(uint64_t seq, const Record& record, std::string& payload,
                        std::string& why) {
  int fd = -1;
  if (seq == active_seq_) {
    fd = active_fd_;
  } else {
    if (read_fd_seq_ != seq || read_fd_ < 0) {
      if (read_fd_ >= 0) ::close(read_fd_);
      read_fd_seq_ = seq;
      read_fd_ = ::open(segments_.at(seq).path.c_str(), O_RDONLY | O_CLOEXEC);
      if (read_fd_ < 0) {
        why = fmt::format("cannot open it: {}", errno_text(errno));
        return false;
      }
    }
    fd = read_fd_;
  }
  std::string data(kRecordHeader + record.length, '\0');
  if (!read_all(fd, data.data(), data.size(), record.offset)) {
    why = fmt::format("cannot read it: {}", errno_text(errno));
    return false;
  }
  uint32_t length = 0;
  uint32_t events = 0;
  if (!valid_record(data, 0, length, events) || length != record.length) {
    why = "checksum mismatch";
    return false;
  }
  payload = data.substr(kRecordHeader);
  return true;
}

std::optional<Spool::Claim> Spool::claim() {
  std::lock_guard lock(mu_);
  if (closed_) return std::nullopt;
  Key key;
  while (next_key(key)) {
    Segment& segment = segments_.at(key.first);
    Record& record = segment.records[key.second];
    std::string payload;
    std::string why;
    BatchPtr batch;
    if (read_record(key.first, record, payload, why)) batch = decode_batch(payload, why);
    if (!batch) {
      ++totals_.corrupt_records;
      deliver(segment, record);
      maybe_delete(key.first);
      continue;
    }
    record.state = State::kClaimed;
    ++segment.claimed;
    return Claim{key.first, key.second, std::move(batch), record.events};
  }
  return std::nullopt;
}

void Spool::release(const Claim& claim, bool delivered) {
  std::lock_guard lock(mu_);
  if (closed_) return;  // the cursor is written: a claim still out at close() is replayed
  auto it = segments_.find(claim.segment);
  if (it == segments_.end() || claim.index >= it->second.records.size()) return;
  Segment& segment = it->second;
  Record& record = segment.records[claim.index];
  if (record.state != State::kClaimed) return;
  --segment.claimed;
  if (!delivered) {
    record.state = State::kPending;
    returned_.insert({claim.segment, claim.index});
    return;
  }
  deliver(segment, record);
  totals_.delivered_events += record.events;
  maybe_delete(claim.segment);
  if (since_cursor_ >= kCursorEvery) write_cursor();
}

void Spool::sync() {
  std::lock_guard lock(mu_);
  if (dirty_ && config_.fsync != Fsync::kNever) datasync_locked();
}

void Spool::datasync_locked() {
  if (active_fd_ >= 0 && ::fdatasync(active_fd_) != 0) return;  // stays dirty: tried again
  dirty_ = false;
  last_sync_ns_ = clock_.monotonic_ns();
}

void Spool::sync_dir() {
  if (config_.fsync == Fsync::kNever) return;
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void Spool::close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  close_active();
  write_cursor();
  if (read_fd_ >= 0) ::close(read_fd_);
  read_fd_ = -1;
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
  closed_ = true;
}

uint64_t Spool::records() const {
  std::lock_guard lock(mu_);
  return pending_records_;
}

uint64_t Spool::events() const {
  std::lock_guard lock(mu_);
  return pending_events_;
}

int64_t Spool::oldest_ns() const {
  std::lock_guard lock(mu_);
  for (const auto& [seq, segment] : segments_)
    if (segment.delivered < segment.records.size()) return segment.created_ns;
  return 0;
}

uint64_t Spool::bytes() const {
  std::lock_guard lock(mu_);
  return disk_bytes_;
}

uint64_t Spool::segments() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

Spool::Totals Spool::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

}  // namespace ingestd::reliability
