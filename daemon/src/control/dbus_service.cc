#include "control/dbus_service.h"

#include <map>
#include <tuple>

#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "control/dbus_names.h"

namespace ingestd::control {

using namespace dbus;

namespace {

// Replies with the tuple `work` returns, or with Error.Failed when it throws: an asynchronous
// call must always be answered, else its caller waits for its timeout.
template <class... Results, class Work>
void reply(const sdbus::Result<Results...>& result, Work&& work) {
  try {
    std::apply([&](const auto&... values) { result.returnResults(values...); }, work());
  } catch (const std::exception& e) {
    spdlog::error("D-Bus: a call failed: {}", e.what());
    result.returnError(sdbus::Error(kErrorFailed, e.what()));
  }
}

}  // namespace

std::unique_ptr<DbusService> DbusService::start(const std::string& bus, DaemonApi& api) {
  if (bus == "none") return nullptr;
  std::unique_ptr<DbusService> service;
  try {
    service.reset(new DbusService(connect_bus(bus), api));
    service->export_object();
    service->connection_->requestName(kServiceName);
    service->connection_->enterEventLoopAsync();
  } catch (const sdbus::Error& e) {
    spdlog::warn(
        "D-Bus: cannot serve {} on {} ({}: {}); running without D-Bus, so ingestctl cannot "
        "reach this daemon (choose a bus with --bus, or --bus none)",
        kServiceName, describe_bus(bus), e.getName(), e.getMessage());
    return nullptr;
  }
  spdlog::info("D-Bus: serving {} on {}", kServiceName, describe_bus(bus));
  return service;
}

DbusService::DbusService(std::unique_ptr<sdbus::IConnection> connection, DaemonApi& api)
    : api_(api), connection_(std::move(connection)) {}

DbusService::~DbusService() {
  if (connection_) connection_->leaveEventLoop();
  join_finished_calls(true);
  object_.reset();
  connection_.reset();
}

template <class Task>
bool DbusService::run_blocking(Task&& task) {
  join_finished_calls(false);
  std::lock_guard lock(calls_mu_);
  if (calls_.size() >= kMaxBlockingCalls) return false;
  auto done = std::make_shared<bool>(false);
  calls_.push_back({std::thread([this, done, task = std::forward<Task>(task)]() mutable {
                      task();
                      std::lock_guard lock(calls_mu_);
                      *done = true;
                    }),
                    done});
  return true;
}

void DbusService::join_finished_calls(bool all) {
  std::vector<Call> finished;
  {
    std::lock_guard lock(calls_mu_);
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (all || *it->done) {
        finished.push_back(std::move(*it));
        it = calls_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) c.thread.join();
}

void DbusService::export_object() {
  object_ = sdbus::createObject(*connection_, kObjectPath);
  auto busy = [] {
    return sdbus::Error(kErrorBusy,
                        fmt::format("more than {} Reload, Validate or GetAggregates calls "
                                    "are running",
                                    kMaxBlockingCalls));
  };

  object_->registerMethod("Reload")
      .onInterface(kInterface)
      .withOutputParamNames("ok", "message")
      .implementedAs([this, busy](sdbus::Result<bool, std::string>&& result) {
        spdlog::info("D-Bus: Reload requested");
        bool started = run_blocking([this, result = std::move(result)] {
          reply(result, [this] {
            ReloadReport report = api_.reload();
            return std::tuple(report.ok, report.message);
          });
        });
        if (!started) throw busy();
      });

  object_->registerMethod("Validate")
      .onInterface(kInterface)
      .withInputParamNames("path")
      .withOutputParamNames("ok", "errors")
      .implementedAs([this, busy](sdbus::Result<bool, std::vector<std::string>>&& result,
                                  const std::string& path) {
        // The daemon's working directory is not the caller's: a relative path would name
        // another file than the caller meant.
        if (!path.starts_with('/'))
          throw sdbus::Error(kErrorInvalidArgument,
                             fmt::format("'{}' is not an absolute path; give the file's full path "
                                         "(ingestctl does this for you)",
                                         path));
        bool started = run_blocking([this, path, result = std::move(result)] {
          reply(result, [this, &path] {
            std::vector<std::string> errors = api_.validate(path);
            return std::tuple(errors.empty(), errors);
          });
        });
        if (!started) throw busy();
      });

  object_->registerMethod("GetStatus")
      .onInterface(kInterface)
      .withOutputParamNames("json")
      .implementedAs([this] { return api_.status_json(); });

  // Answered from a thread of its own: the aggregator answers between its calls.
  object_->registerMethod("GetAggregates")
      .onInterface(kInterface)
      .withInputParamNames("component", "where")
      .withOutputParamNames("json")
      .implementedAs([this, busy](sdbus::Result<std::string>&& result, const std::string& component,
                                  const std::map<std::string, std::string>& where) {
        Aggregator::InspectQuery query;
        query.where.assign(where.begin(), where.end());
        bool started = run_blocking([this, component, query, result = std::move(result)] {
          try {
            result.returnResults(api_.aggregates_json(component, query));
          } catch (const DaemonApi::NoSuchAggregator& e) {
            result.returnError(sdbus::Error(kErrorInvalidArgument, e.what()));
          } catch (const std::exception& e) {
            result.returnError(sdbus::Error(kErrorFailed, e.what()));
          }
        });
        if (!started) throw busy();
      });

  object_->registerMethod("SetLogLevel")
      .onInterface(kInterface)
      .withInputParamNames("level")
      .implementedAs([this](const std::string& level) {
        if (!api_.set_log_level(level))
          throw sdbus::Error(kErrorInvalidLevel,
                             fmt::format("unknown log level '{}': use trace, debug, info, warning "
                                         "(or warn) or error",
                                         level));
      });

  object_->registerProperty("Version")
      .onInterface(kInterface)
      .withGetter([] { return std::string(INGESTD_VERSION); })
      .withUpdateBehavior(sdbus::Flags::CONST_PROPERTY_VALUE);
  object_->registerProperty("ConfigPath").onInterface(kInterface).withGetter([this] {
    return api_.config_path();
  });
  object_->registerProperty("State").onInterface(kInterface).withGetter([this] {
    return api_.state();
  });
  object_->registerProperty("LastReload").onInterface(kInterface).withGetter([this] {
    return api_.last_reload().to_json();
  });

  object_->registerSignal("Reloaded")
      .onInterface(kInterface)
      .withParameters<bool, std::string>("ok", "message");
  object_->registerSignal("BreakerChanged")
      .onInterface(kInterface)
      .withParameters<std::string, std::string>("sink", "state");

  object_->finishRegistration();

  last_state_ = api_.state();
  last_config_path_ = api_.config_path();
  last_reload_ = api_.last_reload().to_json();
}

void DbusService::refresh() {
  std::vector<std::string> changed;
  {
    std::lock_guard lock(refresh_mu_);
    auto check = [&changed](const char* name, std::string& last, std::string now) {
      if (now == last) return;
      last = std::move(now);
      changed.emplace_back(name);
    };
    check("State", last_state_, api_.state());
    check("ConfigPath", last_config_path_, api_.config_path());
    check("LastReload", last_reload_, api_.last_reload().to_json());
  }
  if (changed.empty()) return;
  try {
    object_->emitPropertiesChangedSignal(kInterface, changed);
  } catch (const sdbus::Error& e) {
    spdlog::debug("D-Bus: cannot emit PropertiesChanged: {}", e.getMessage());
  }
}

void DbusService::reloaded(const ReloadReport& report) {
  try {
    object_->emitSignal("Reloaded")
        .onInterface(kInterface)
        .withArguments(report.ok, report.message);
  } catch (const sdbus::Error& e) {
    spdlog::debug("D-Bus: cannot emit Reloaded: {}", e.getMessage());
  }
  refresh();
}

void DbusService::breaker_changed(const std::string& sink, const std::string& state) {
  try {
    object_->emitSignal("BreakerChanged").onInterface(kInterface).withArguments(sink, state);
  } catch (const sdbus::Error& e) {
    spdlog::debug("D-Bus: cannot emit BreakerChanged: {}", e.getMessage());
  }
}

}  // namespace ingestd::control
