#include "sink/stdout/stdout_sink.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <utility>

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

// Writes a batch of one event to `fd` twice, with a fresh sink.
std::pair<SinkResult, SinkResult> write_twice_to(int fd) {
  std::vector<config::Error> errors;
  CollectingDiagnostics diag;
  StdoutSink sink(*config::options_from_yaml(kDescriptor, "{}", errors), diag);
  FakeContext ctx;
  EXPECT_TRUE(sink.start(ctx));
  sink.set_fd_for_testing(fd);
  Batch batch;
  batch.add(batch.copy("x"), 0);
  SinkResult first = sink.write(ctx, batch);
  return {std::move(first), sink.write(ctx, batch)};
}

TEST(StdoutSink, AClosedOutputIsARetryableError) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[1]);
  auto [r, again] = write_twice_to(fds[1]);  // closed: EBADF
  ::close(fds[0]);
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_NE(r.error.find("stdout"), std::string::npos);
}

// `ingestd | head`: the reader went away. The daemon ignores SIGPIPE, so write() fails with
// EPIPE, and no retry can help.
TEST(StdoutSink, AReaderThatClosedThePipeIsAPermanentError) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &previous), 0);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  auto [first, second] = write_twice_to(fds[1]);
  ::close(fds[1]);
  ::sigaction(SIGPIPE, &previous, nullptr);
  EXPECT_EQ(first.status, SinkStatus::kPermanent);
  EXPECT_NE(first.error.find("reader has closed"), std::string::npos) << first.error;
  EXPECT_EQ(second.status, SinkStatus::kPermanent);
}

}  // namespace
}  // namespace ingestd::plugins
