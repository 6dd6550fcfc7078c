#pragma once

// The D-Bus API's names and the `--bus` choice, shared by the daemon's service and ingestctl.

#include <memory>
#include <string>

#include <sdbus-c++/IConnection.h>

namespace ingestd::control::dbus {

inline constexpr const char* kServiceName = "org.ingestd.Daemon1";
inline constexpr const char* kObjectPath = "/org/ingestd/Daemon1";
inline constexpr const char* kInterface = "org.ingestd.Daemon1";
inline constexpr const char* kErrorInvalidLevel = "org.ingestd.Daemon1.Error.InvalidLevel";
inline constexpr const char* kErrorInvalidArgument = "org.ingestd.Daemon1.Error.InvalidArgument";
inline constexpr const char* kErrorBusy = "org.ingestd.Daemon1.Error.Busy";
inline constexpr const char* kErrorFailed = "org.ingestd.Daemon1.Error.Failed";

// "system", "session", or a D-Bus address ("unix:path=/run/x/bus"), as in messages: "the system
// bus", "the session bus", "the bus at unix:path=...".
inline std::string describe_bus(const std::string& bus) {
  if (bus == "system" || bus == "session") return "the " + bus + " bus";
  return "the bus at " + bus;
}

// Connects to the named bus (not "none"). Throws sdbus::Error when it cannot be reached.
inline std::unique_ptr<sdbus::IConnection> connect_bus(const std::string& bus) {
  if (bus == "system") return sdbus::createSystemBusConnection();
  if (bus == "session") return sdbus::createSessionBusConnection();
  return sdbus::createSessionBusConnectionWithAddress(bus);
}

}  // namespace ingestd::control::dbus
