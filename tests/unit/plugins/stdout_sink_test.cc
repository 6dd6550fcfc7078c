#include "sink/stdout/stdout_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor =
    describe<StdoutSink>(Kind::kSink, "stdout", kStdoutSinkDoc, kStdoutSinkOptions, kSingleWorker);

std::string write_through_pipe(const std::string& yaml, const Batch& batch, FakeContext& ctx) {
  std::vector<config::Error> errors;
  std::optional<Options> options = config::options_from_yaml(kDescriptor, yaml, errors);
  EXPECT_TRUE(options.has_value());
  CollectingDiagnostics diag;
  StdoutSink sink(options.value_or(Options{}), diag);
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  sink.set_fd_for_testing(fds[1]);
  EXPECT_TRUE(sink.start(ctx));
  EXPECT_EQ(sink.write(ctx, batch).status, SinkStatus::kOk);
  ::close(fds[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  return out;
}

TEST(StdoutSink, WritesOneLinePerEventInTheChosenEncoding) {
  Batch batch;
  Event& read = batch.add(batch.copy("raw line"), 0);
  batch.append_field(read, "k", Value::boolean(true));
  Event& made = batch.add({}, 0);
  batch.append_field(made, "count", Value::integer(-3));

  FakeContext ctx;
  EXPECT_EQ(write_through_pipe("{}", batch, ctx), "raw line\n{\"count\":-3}\n");
  EXPECT_EQ(ctx.count("bytes"), 22u);
  FakeContext ctx_json;
  EXPECT_EQ(write_through_pipe("encoding: json", batch, ctx_json),
            "{\"k\":true}\n{\"count\":-3}\n");
  FakeContext ctx_raw;
  EXPECT_EQ(write_through_pipe("encoding: raw", batch, ctx_raw), "raw line\n\n");
}

TEST(StdoutSink, AClosedOutputIsARetryableError) {
  std::vector<config::Error> errors;
  CollectingDiagnostics diag;
  StdoutSink sink(*config::options_from_yaml(kDescriptor, "{}", errors), diag);
  FakeContext ctx;
  ASSERT_TRUE(sink.start(ctx));
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[1]);
  sink.set_fd_for_testing(fds[1]);  // closed: EBADF
  Batch batch;
  batch.add(batch.copy("x"), 0);
  SinkResult r = sink.write(ctx, batch);
  ::close(fds[0]);
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_NE(r.error.find("stdout"), std::string::npos);
}

}  // namespace
}  // namespace ingestd::plugins
