// Helpers shared by the plugin unit tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"
#include "ingestd/plugin.h"

namespace ingestd::testing {

// The options of `descriptor` from YAML, validated and with defaults, as the core would give them;
// a validation error fails the test and yields empty options.
inline Options options_or_fail(const ComponentDescriptor& descriptor, const std::string& yaml) {
  std::vector<config::Error> errors;
  std::optional<Options> options = config::options_from_yaml(descriptor, yaml, errors);
  std::string text;
  for (const auto& e : errors) text += e.to_string() + "\n";
  EXPECT_TRUE(options.has_value()) << text;
  return options.value_or(Options{});
}

// A fresh directory under the system's temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ingestd_test_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ingestd::testing
