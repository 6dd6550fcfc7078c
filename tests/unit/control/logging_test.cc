#include "control/logging.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ingestd::control {
namespace {

bool has(const std::vector<std::string>& fields, const std::string& field) {
  return std::find(fields.begin(), fields.end(), field) != fields.end();
}

bool has_key(const std::vector<std::string>& fields, const std::string& key) {
  return std::any_of(fields.begin(), fields.end(),
                     [&](const std::string& f) { return f.rfind(key + "=", 0) == 0; });
}

TEST(JournalFields, ComponentMessageCarriesComponentAndKind) {
  auto fields = detail::journal_fields(4, "[sinks.archive] write failed, retrying: EIO", "",
                                       nullptr, 0, nullptr);
  EXPECT_TRUE(has(fields, "MESSAGE=[sinks.archive] write failed, retrying: EIO"));
  EXPECT_TRUE(has(fields, "PRIORITY=4"));
  EXPECT_TRUE(has(fields, "SYSLOG_IDENTIFIER=ingestd"));
  EXPECT_TRUE(has(fields, "COMPONENT=archive"));
  EXPECT_TRUE(has(fields, "KIND=sink"));
  EXPECT_FALSE(has_key(fields, "CODE_FILE"));
  EXPECT_FALSE(has_key(fields, "PIPELINE"));
}

TEST(JournalFields, EachSectionNamesItsKind) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sources", "source"}, {"parsers", "parser"}, {"aggregates", "aggregate"}, {"sinks", "sink"}};
  for (const auto& [section, kind] : cases) {
    auto fields = detail::journal_fields(6, "[" + section + ".x] m", "", nullptr, 0, nullptr);
    EXPECT_TRUE(has(fields, "KIND=" + kind)) << section;
    EXPECT_TRUE(has(fields, "COMPONENT=x")) << section;
  }
}

TEST(JournalFields, DaemonMessageHasNoComponent) {
  for (const char* message : {"ingestd 0.1.0 running 4 components", "[not a component] text",
                              "[widgets.x] unknown section", "[sinks.] empty name"}) {
    auto fields = detail::journal_fields(6, message, "", nullptr, 0, nullptr);
    EXPECT_FALSE(has_key(fields, "COMPONENT")) << message;
    EXPECT_FALSE(has_key(fields, "KIND")) << message;
    EXPECT_TRUE(has(fields, std::string("MESSAGE=") + message));
  }
}

TEST(JournalFields, CodeLocationWhenKnown) {
  auto fields = detail::journal_fields(3, "boom", "/etc/ingestd/pipeline.yaml",
                                       "daemon/src/control/daemon.cc", 42, "run");
  EXPECT_TRUE(has(fields, "PIPELINE=/etc/ingestd/pipeline.yaml"));
  EXPECT_TRUE(has(fields, "CODE_FILE=daemon/src/control/daemon.cc"));
  EXPECT_TRUE(has(fields, "CODE_LINE=42"));
  EXPECT_TRUE(has(fields, "CODE_FUNC=run"));
  EXPECT_TRUE(has(fields, "PRIORITY=3"));
}

TEST(LogLevel, AcceptsTheOperatorNames) {
  init_logging(LogTarget::kStderr);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"warning", "warning"}, {"warn", "warning"}, {"error", "error"},
      {"trace", "trace"},     {"debug", "debug"},  {"info", "info"}};
  for (const auto& [name, shown] : cases) {
    EXPECT_TRUE(set_log_level(name)) << name;
    EXPECT_EQ(log_level(), shown) << name;
  }
}

TEST(LogLevel, RefusesUnknownNamesAndKeepsTheLevel) {
  init_logging(LogTarget::kStderr);
  ASSERT_TRUE(set_log_level("error"));
  for (const char* name : {"loud", "", "WARNING", "off", "critical", "warni"})
    EXPECT_FALSE(set_log_level(name)) << name;
  EXPECT_EQ(log_level(), "error");
}

TEST(LogLevel, SurvivesASwitchOfTarget) {
  init_logging(LogTarget::kStderr);
  ASSERT_TRUE(set_log_level("debug"));
  init_logging(LogTarget::kStderr);
  EXPECT_EQ(log_level(), "debug");
}

TEST(LogTarget, JournalStreamMustNameStderr) {
  struct stat st {};
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  setenv("JOURNAL_STREAM", other.c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
  setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(stderr_is_journal());
  setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  unsetenv("JOURNAL_STREAM");
}

TEST(LogTarget, Names) {
  EXPECT_EQ(parse_log_target("journald"), LogTarget::kJournald);
  EXPECT_EQ(parse_log_target("stderr"), LogTarget::kStderr);
  EXPECT_EQ(parse_log_target("auto"), LogTarget::kAuto);
  EXPECT_EQ(parse_log_target("syslog"), std::nullopt);
}

}  // namespace
}  // namespace ingestd::control
