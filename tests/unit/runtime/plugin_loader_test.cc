#include "runtime/plugin_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace ingestd::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string case_dir(const std::string& name) {
  return std::string(INGESTD_TEST_PLUGIN_DIR) + "/" + name;
}

// A private copy of some test plugins in a fresh directory, so that modes can be changed.
struct TempPluginDir {
  explicit TempPluginDir(std::initializer_list<std::string> cases) {
    char tmpl[] = "/tmp/ingestd-plugins-XXXXXX";
    path = mkdtemp(tmpl);
    chmod(path.c_str(), 0755);
    for (const auto& c : cases)
      fs::copy_file(case_dir(c) + "/" + c + ".so", path + "/" + c + ".so");
  }
  ~TempPluginDir() { fs::remove_all(path); }
  std::string path;
};

TEST(PluginLoader, LoadsAGoodPluginAndFindsItsComponents) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({case_dir("good")}, problems);
  EXPECT_THAT(problems, ::testing::IsEmpty());
  ASSERT_EQ(catalog.plugins().size(), 1u);
  EXPECT_STREQ(catalog.plugins()[0].descriptor->name, "test-good");
  const ComponentDescriptor* c = catalog.find(Kind::kSource, "test_source");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(catalog.find(Kind::kSink, "test_source"), nullptr);
  EXPECT_EQ(catalog.types(Kind::kSource), std::vector<std::string>{"test_source"});
  EXPECT_EQ(catalog.provider(c), &catalog.plugins()[0]);
}

TEST(PluginLoader, RefusesABuildSignatureMismatchNamingTheField) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({case_dir("compiler")}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(
      problems[0],
      HasSubstr(
          "compiler.so: refused: build signature differs in compiler_major: plugin 3, daemon "));
  EXPECT_TRUE(catalog.plugins().empty());
  EXPECT_EQ(catalog.find(Kind::kSource, "test_compiler"), nullptr);
}

TEST(PluginLoader, RefusesAnotherAbiVersion) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({case_dir("abi")}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("abi.so: refused: plugin ABI version 999, daemon expects 1"));
}

TEST(PluginLoader, RefusesALibraryWithoutTheEntrySymbol) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({case_dir("no_entry")}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("not an ingestd plugin (no ingestd_plugin_v1 symbol)"));
}

TEST(PluginLoader, RefusesADuplicateTypeAndKeepsTheFirst) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({case_dir("good"), case_dir("duplicate")}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(
      problems[0],
      HasSubstr(
          "duplicate.so: refused: duplicate source type 'test_source', already provided by "));
  EXPECT_THAT(problems[0], HasSubstr("good.so"));
  ASSERT_EQ(catalog.plugins().size(), 1u);
  EXPECT_STREQ(catalog.plugins()[0].descriptor->name, "test-good");
}

TEST(PluginLoader, RefusesAGroupWritableFile) {
  TempPluginDir dir({"good"});
  chmod((dir.path + "/good.so").c_str(), 0775);
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({dir.path}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("good.so: refused: group-writable (mode 0775)"));
  EXPECT_TRUE(catalog.plugins().empty());
}

TEST(PluginLoader, RefusesAWorldWritableDirectory) {
  TempPluginDir dir({"good"});
  chmod(dir.path.c_str(), 0777);
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({dir.path}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr(dir.path + ": refused: world-writable (mode 0777)"));
}

TEST(PluginLoader, SkipsMissingDirectoriesSilently) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({"/nonexistent/ingestd/plugins"}, problems);
  EXPECT_TRUE(problems.empty());
}

TEST(PluginLoader, SignatureMismatchChecksEachField) {
  BuildSignature daemon = this_build();
  BuildSignature p = daemon;
  EXPECT_EQ(signature_mismatch(p, daemon), "");
  p.cxx11_abi ^= 1;
  EXPECT_THAT(signature_mismatch(p, daemon), HasSubstr("differs in cxx11_abi"));
  p = daemon;
  p.sanitizers = daemon.sanitizers ^ 1;
  EXPECT_THAT(signature_mismatch(p, daemon), HasSubstr("differs in sanitizers"));
  p = daemon;
  p.sdk_minor = daemon.sdk_minor + 1;
  EXPECT_THAT(signature_mismatch(p, daemon), HasSubstr("sdk_minor: plugin needs SDK"));
  p = daemon;
  if (daemon.sdk_minor > 0) {
    p.sdk_minor = daemon.sdk_minor - 1;  // before 1.0 an older minor is not compatible
    EXPECT_THAT(signature_mismatch(p, daemon), HasSubstr("rebuild the plugin"));
    p.sdk_major = daemon.sdk_major = 1;  // from 1.0 on it is
    EXPECT_EQ(signature_mismatch(p, daemon), "");
  }
}

}  // namespace
}  // namespace ingestd::runtime
