#include "timewait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "allocate.h"
#include "batch.h"

namespace portalloc {
namespace {

// The three sockets of one reservation; whatever is open is closed on scope exit.
struct Trio {
  int listener = -1, client = -1, accepted = -1;
  ~Trio() {
    // The accepted (server) side closes first: it sends the first FIN, so it is
    // the side that ends in TIME_WAIT, on the listener's port.
    if (accepted >= 0) close(accepted);
    if (client >= 0) close(client);
    if (listener >= 0) close(listener);
  }
};

// Puts `port` (0: the kernel's choice) into TIME_WAIT. Returns the port, 0 when
// the port is busy, -1 on failure with *syscall set and errno kept.
int Reserve(const Address& address, uint16_t port, const char** syscall) {
  Trio trio;
  sockaddr_storage s = address.storage;
  SetPort(&s, port);
  *syscall = "socket";
  trio.listener = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (trio.listener < 0) return -1;
  *syscall = "bind";
  if (bind(trio.listener, reinterpret_cast<sockaddr*>(&s), address.length) != 0) {
    if (port != 0 && (errno == EADDRINUSE || errno == EACCES)) return 0;
    return -1;
  }
  socklen_t length = sizeof s;
  *syscall = "getsockname";
  if (getsockname(trio.listener, reinterpret_cast<sockaddr*>(&s), &length) != 0) return -1;
  // The accepted socket inherits SO_REUSEADDR, and so does the TIME_WAIT it
  // leaves: without it, a SO_REUSEADDR server on [::] could not take the port.
  // Set after bind: before, bind(0) searches only half the range, far slower.
  const int on = 1;
  *syscall = "setsockopt";
  if (setsockopt(trio.listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return -1;
  *syscall = "listen";
  if (listen(trio.listener, 1) != 0) return -1;
  *syscall = "socket";
  trio.client = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (trio.client < 0) return -1;
  *syscall = "connect";
  if (connect(trio.client, reinterpret_cast<sockaddr*>(&s), length) != 0) return -1;
  *syscall = "accept";
  trio.accepted = accept4(trio.listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (trio.accepted < 0) return -1;
  return PortOf(s);
}

BatchResult RunTimeWait(const BatchRequest& request) {
  BatchResult result;
  std::vector<uint8_t> taken(65536, 0);
  const auto excluded = [&](uint32_t port) {
    const auto& bitmap = request.exclude;
    return taken[port] || PortBlocked(port, request.ticket) || (!bitmap.empty() && ((bitmap[port >> 3] >> (port & 7)) & 1));
  };
  const char* syscall = nullptr;
  if (request.rangeFrom == 0) {
    // bind(0) skips ports in TIME_WAIT, so each new reservation finds a new port;
    // an excluded one is reserved anyway (harmless) and not returned.
    uint32_t attempts = 0;
    while (result.ports.size() < request.count) {
      if (++attempts > request.count + 65536) {
        result.exhausted = true;
        return result;
      }
      int port = Reserve(request.address, 0, &syscall);
      if (port < 0) {
        if (errno == EADDRINUSE) {
          result.exhausted = true;
          return result;
        }
        result.error = errno;
        result.syscall = syscall;
        result.ports.clear();
        return result;
      }
      if (excluded(static_cast<uint32_t>(port))) continue;
      taken[port] = 1;
      result.ports.push_back(port);
    }
    return result;
  }
  const uint32_t low = request.rangeFrom, high = request.rangeTo;
  uint32_t next = request.start < low || request.start > high ? low : request.start;
  for (uint32_t remaining = high - low + 1; remaining > 0 && result.ports.size() < request.count; --remaining) {
    const uint32_t port = next;
    next = next == high ? low : next + 1;
    if (excluded(port)) continue;
    int reserved = Reserve(request.address, static_cast<uint16_t>(port), &syscall);
    if (reserved < 0) {
      result.error = errno;
      result.syscall = syscall;
      result.errorPort = port;
      result.ports.clear();
      return result;
    }
    if (reserved == 0) continue;  // busy
    // A probing allocate may have found it between the check and the bind: its
    // in-flight bit or pin says so (the port is in TIME_WAIT now, harmlessly).
    if (PortBlocked(port, request.ticket)) continue;
    taken[port] = 1;
    result.ports.push_back(reserved);
  }
  if (result.ports.size() < request.count) result.exhausted = true;
  return result;
}

}  // namespace

Napi::Value TimeWait(const Napi::CallbackInfo& info) { return RunSync(info, RunTimeWait); }

Napi::Value TimeWaitAsync(const Napi::CallbackInfo& info) { return RunAsync(info, RunTimeWait, "portalloc:timewait"); }

}  // namespace portalloc
