#include "control/notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ingestd::control {
namespace {

constexpr int64_t kMs = 1'000'000;

// A NOTIFY_SOCKET of the test's own: a bound datagram socket; received() drains what arrived.
class NotifySocket {
 public:
  NotifySocket() {
    char dir_template[] = "/tmp/ingestd-notify-XXXXXX";
    dir_ = mkdtemp(dir_template);
    path_ = dir_ + "/notify";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~NotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  // sd_notify has sent by the time it returns: datagrams are queued synchronously.
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[4096];
    for (ssize_t n; (n = recv(fd_, buf, sizeof(buf), 0)) > 0;) out.emplace_back(buf, n);
    return out;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

TEST(Notifier, SendsTheLifecycleMessages) {
  NotifySocket sock;
  Notifier n;
  ASSERT_TRUE(n.enabled());
  n.ready();
  n.status("running 2 components");
  n.status("running 2 components");  // unchanged: not sent again
  n.stopping();
  EXPECT_EQ(sock.received(),
            (std::vector<std::string>{"READY=1", "STATUS=running 2 components", "STOPPING=1"}));
}

TEST(Notifier, ReloadingCarriesTheMonotonicClock) {
  NotifySocket sock;
  Notifier n;
  int64_t before = monotonic_now_ns() / 1000;
  n.reloading();
  int64_t after = monotonic_now_ns() / 1000;
  auto got = sock.received();
  ASSERT_EQ(got.size(), 1u);
  long long usec = 0;
  ASSERT_EQ(std::sscanf(got[0].c_str(), "RELOADING=1\nMONOTONIC_USEC=%lld", &usec), 1) << got[0];
  EXPECT_GE(usec, before);
  EXPECT_LE(usec, after);
}

TEST(Notifier, WatchdogPingsAtHalfTheIntervalWhileHealthy) {
  NotifySocket sock;
  setenv("WATCHDOG_USEC", "1000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  Notifier n;
  ASSERT_EQ(n.watchdog_interval_ns(), 1000 * kMs);
  bool healthy = true;
  n.set_health_check([&] { return healthy ? std::string() : std::string("sinks.out is stuck"); });
  n.tick(0);  // first tick pings at once
  n.tick(499 * kMs);
  EXPECT_EQ(sock.received(), std::vector<std::string>{"WATCHDOG=1"});
  n.tick(500 * kMs);
  EXPECT_EQ(sock.received(), std::vector<std::string>{"WATCHDOG=1"});
  healthy = false;  // wedged: no more pings
  n.tick(1000 * kMs);
  n.tick(1500 * kMs);
  EXPECT_TRUE(sock.received().empty());
  healthy = true;
  n.tick(1600 * kMs);
  EXPECT_EQ(sock.received(), std::vector<std::string>{"WATCHDOG=1"});
}

TEST(Notifier, NoWatchdogForAnotherProcess) {
  NotifySocket sock;
  setenv("WATCHDOG_USEC", "1000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  Notifier n;
  EXPECT_EQ(n.watchdog_interval_ns(), 0);
  n.tick(0);
  n.tick(10'000 * kMs);
  EXPECT_TRUE(sock.received().empty());
}

TEST(Notifier, SilentWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "1000000", 1);
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdog_interval_ns(), 0);
  unsetenv("WATCHDOG_USEC");
}

}  // namespace
}  // namespace ingestd::control
