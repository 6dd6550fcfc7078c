#include "reliability/dead_letter.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <absl/strings/escaping.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fake_context.h"

namespace ingestd::reliability {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kTime = 1'700'000'000'123'000'000;  // 2023-11-14T22:13:20.123Z

// A fresh directory under the test temp dir, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("dead_letter_test." + std::to_string(::getpid()) + "." + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The member `key` of a JSON object, parsed by simdjson (not by the code under test).
std::string member(const std::string& line, const char* key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
  std::string_view v;
  if (doc[key].get(v) != simdjson::SUCCESS) return "<missing>";
  return std::string(v);
}

TEST(DeadLetterFile, ValidUtf8IsStoredAsJsonText) {
  std::string line = DeadLetterFile::line("parse", kTime, "{\"a\": \"é\"}\t\"", "bad \"json\"");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(member(line, "raw"), "{\"a\": \"é\"}\t\"");
  EXPECT_EQ(member(line, "reason"), "bad \"json\"");
  EXPECT_EQ(member(line, "component"), "parse");
  EXPECT_EQ(member(line, "time"), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(member(line, "raw_base64"), "<missing>");
}

TEST(DeadLetterFile, InvalidUtf8IsBase64SoTheLineStaysJson) {
  const std::string raw("ab\xff\xfe\0cd\xc3", 8);
  const std::string reason("peer said \x80", 11);
  std::string line = DeadLetterFile::line("out", kTime, raw, reason);
  EXPECT_EQ(member(line, "raw"), "<missing>");
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(member(line, "raw_base64"), &decoded));
  EXPECT_EQ(decoded, raw);
  ASSERT_TRUE(absl::Base64Unescape(member(line, "reason_base64"), &decoded));
  EXPECT_EQ(decoded, reason);
}

TEST(DeadLetterFile, AppendsLinesAndCreatesTheDirectory) {
  TempDir dir;
  testing::FakeClock clock(kTime);
  DeadLetterFile file(dir.path() / "dead_letter" / "out.jsonl", "out", clock);
  std::string error;
  ASSERT_TRUE(file.write("one", "r1", error)) << error;
  ASSERT_TRUE(file.write("two", "r2", error)) << error;
  std::string text = read_all(dir.path() / "dead_letter" / "out.jsonl");
  EXPECT_EQ(text, DeadLetterFile::line("out", kTime, "one", "r1") +
                      DeadLetterFile::line("out", kTime, "two", "r2"));
}

TEST(DeadLetterFile, AnUnusableDirectoryIsAnErrorNamingTheRealCause) {
  TempDir dir;
  testing::FakeClock clock(kTime);
  // A file where the directory should be: creating it fails with "File exists"/"Not a
  // directory", not a misleading "No such file or directory" from the open that follows.
  std::ofstream(dir.path() / "dead_letter") << "x";
  DeadLetterFile file(dir.path() / "dead_letter" / "out.jsonl", "out", clock);
  std::string error;
  EXPECT_FALSE(file.write("one", "r1", error));
  EXPECT_NE(error.find("cannot create dead-letter directory"), std::string::npos) << error;
  EXPECT_EQ(error.find("No such file"), std::string::npos) << error;
  // Fixed by the operator: the next write opens it.
  fs::remove(dir.path() / "dead_letter");
  EXPECT_TRUE(file.write("two", "r2", error)) << error;
}

TEST(DeadLetterFile, AFullDiskIsAnError) {
  testing::FakeClock clock(kTime);
  DeadLetterFile file("/dev/full", "out", clock);
  std::string error;
  EXPECT_FALSE(file.write("one", "r1", error));
  EXPECT_NE(error.find("No space left"), std::string::npos) << error;
}

}  // namespace
}  // namespace ingestd::reliability
