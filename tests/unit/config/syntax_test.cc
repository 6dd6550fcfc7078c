// Value syntaxes: durations, sizes, numbers, environment references, suggestions.
#include "config/syntax.h"

#include <gtest/gtest.h>

#include "test_catalog.h"

namespace ingestd::config {
namespace {

using testing::fake_env;

constexpr int64_t kUs = 1'000;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

TEST(ParseDuration, AcceptsEveryUnitAndFractions) {
  struct Case {
    const char* text;
    int64_t ns;
  };
  const Case cases[] = {
      {"0", 0},
      {"0s", 0},
      {"100ns", 100},
      {"10us", 10 * kUs},
      {"250ms", 250 * kMs},
      {"1s", kSec},
      {"1.5s", kSec + kSec / 2},
      {".5s", kSec / 2},
      {"5m", 5 * 60 * kSec},
      {"1h", 3600 * kSec},
      {"2d", 2 * 86400 * kSec},
      {"1h30m", 90 * 60 * kSec},
      {"0.25ms", 250 * kUs},
  };
  for (const Case& c : cases) {
    int64_t ns = -1;
    EXPECT_TRUE(parse_duration(c.text, ns)) << c.text;
    EXPECT_EQ(ns, c.ns) << c.text;
  }
}

TEST(ParseDuration, RejectsBareNumbersUnknownUnitsAndOverflow) {
  for (const char* text :
       {"", "5", "1.5", "fast", "-1s", "1x", "s", "1 s", "1.s", "1ms2", "1S", "200000d"}) {
    int64_t ns = -1;
    EXPECT_FALSE(parse_duration(text, ns)) << text;
  }
}

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0", 0},
      {"4096", 4096},
      {"512B", 512},
      {"64KiB", 64 * 1024},
      {"1MiB", 1024 * 1024},
      {"1GiB", 1024ull * 1024 * 1024},
      {"2TiB", 2ull << 40},
      {"1kB", 1000},
      {"3MB", 3'000'000},
      {"1GB", 1'000'000'000},
      {"1.5KiB", 1536},
      {"64 KiB", 64 * 1024},
  };
  for (const Case& c : cases) {
    uint64_t bytes = 1;
    EXPECT_TRUE(parse_size(c.text, bytes)) << c.text;
    EXPECT_EQ(bytes, c.bytes) << c.text;
  }
}

TEST(ParseSize, RejectsUnknownUnitsFractionsOfBytesAndOverflow) {
  for (const char* text : {"", "-1", "1.5", "64K", "64kib", "1XB", "MiB", "1e3", "4096 ",
                           "9223372036854775808", "10000000TiB"}) {
    uint64_t bytes = 1;
    EXPECT_FALSE(parse_size(text, bytes)) << text;
  }
}

TEST(ParseNumbers, IntegersDoublesAndBooleans) {
  int64_t i = 0;
  EXPECT_TRUE(detail::parse_int("-42", i));
  EXPECT_EQ(i, -42);
  EXPECT_TRUE(detail::parse_int("+7", i));
  EXPECT_EQ(i, 7);
  for (const char* bad : {"", "1.0", "0x10", "12a", "++1", "99999999999999999999"})
    EXPECT_FALSE(detail::parse_int(bad, i)) << bad;

  double d = 0;
  EXPECT_TRUE(detail::parse_double("0.25", d));
  EXPECT_EQ(d, 0.25);
  EXPECT_TRUE(detail::parse_double("1e3", d));
  EXPECT_EQ(d, 1000.0);
  for (const char* bad : {"", "inf", "nan", "1,5", "abc"})
    EXPECT_FALSE(detail::parse_double(bad, d)) << bad;

  bool b = false;
  EXPECT_TRUE(detail::parse_bool("True", b));
  EXPECT_TRUE(b);
  EXPECT_TRUE(detail::parse_bool("false", b));
  EXPECT_FALSE(b);
  EXPECT_FALSE(detail::parse_bool("yes", b));
}

TEST(SubstituteEnv, ReplacesReferencesDefaultsAndEscapes) {
  auto env = fake_env({{"DIR", "/var/lib"}, {"EMPTY", ""}});
  struct Case {
    const char* text;
    const char* out;
  };
  const Case cases[] = {
      {"${DIR}/x", "/var/lib/x"},
      {"${MISSING:-/tmp}", "/tmp"},
      {"${EMPTY:-fallback}", "fallback"},
      {"${DIR:-/tmp}", "/var/lib"},
      {"[${EMPTY}]", "[]"},
      {"cost: $$5", "cost: $5"},
      {"$HOME and $", "$HOME and $"},
      {"20000/s", "20000/s"},
  };
  for (const Case& c : cases) {
    std::string out, error;
    EXPECT_TRUE(detail::substitute_env(c.text, env, out, error)) << c.text << ": " << error;
    EXPECT_EQ(out, c.out);
  }
}

TEST(SubstituteEnv, ReportsUnsetUnterminatedAndInvalidReferences) {
  auto env = fake_env();
  std::string out, error;
  EXPECT_FALSE(detail::substitute_env("${NOPE}", env, out, error));
  EXPECT_EQ(error,
            "environment variable 'NOPE' is not set (write ${NOPE:-default} to give a default)");
  EXPECT_FALSE(detail::substitute_env("a ${NOPE", env, out, error));
  EXPECT_EQ(error, "unterminated '${' in 'a ${NOPE'");
  EXPECT_FALSE(detail::substitute_env("${1X}", env, out, error));
  EXPECT_EQ(error, "invalid environment reference '${1X}'");
}

TEST(DidYouMean, PicksTheClosestCandidateCaseInsensitively) {
  const std::vector<std::string> names = {"path", "rotate_size", "rotate_every", "compress"};
  EXPECT_EQ(detail::closest("pathh", names), "path");
  EXPECT_EQ(detail::closest("PATH", names), "path");
  EXPECT_EQ(detail::closest("rotate_sise", names), "rotate_size");
  EXPECT_EQ(detail::closest("rotateevery", names), "rotate_every");
  EXPECT_EQ(detail::closest("brokers", names), std::nullopt);
  EXPECT_EQ(detail::did_you_mean("compres", names), " (did you mean 'compress'?)");
  EXPECT_EQ(detail::did_you_mean("xyz", names), "");
  EXPECT_EQ(detail::edit_distance("kitten", "sitting"), 3u);
}

TEST(Names, KindAndSectionNames) {
  EXPECT_STREQ(kind_name(Kind::kSource), "source");
  EXPECT_STREQ(kind_name(Kind::kParser), "parser");
  EXPECT_STREQ(kind_name(Kind::kAggregator), "aggregate");
  EXPECT_STREQ(kind_name(Kind::kSink), "sink");
  EXPECT_STREQ(section_name(Kind::kSource), "sources");
  EXPECT_STREQ(section_name(Kind::kParser), "parsers");
  EXPECT_STREQ(section_name(Kind::kAggregator), "aggregates");
  EXPECT_STREQ(section_name(Kind::kSink), "sinks");
  // Filled in member by member: for a braced temporary Error{{file, line, col}, message}, GCC 12
  // at -O3 warns, falsely, that the file string may be used uninitialized.
  Error error;
  error.pos = {"a.yaml", 3, 7};
  error.message = "boom";
  EXPECT_EQ(error.to_string(), "a.yaml:3:7: boom");
}

}  // namespace
}  // namespace ingestd::config
