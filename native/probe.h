// Checking a TCP port without a socket per port.
//
// A socket bound with an explicit port keeps it until close(): socket() and
// close() are most of the kernel's ~8-13 us per port (perf: close 44%, socket
// 27%, bind 17%). A socket bound to port 0 gives its port back when it goes
// from listening to closed (connect(AF_UNSPEC)), and stays open for the next
// bind. IP_LOCAL_PORT_RANGE (Linux 6.3+) narrows that bind(0) to one port P,
// so one socket checks port after port: bind(0) succeeds exactly when an
// explicit bind to P would (the same inet_csk_bind_conflict; measured equal
// on free, bound, listening, connected, TIME_WAIT, SO_REUSEADDR and UDP-only
// ports), and the check costs ~4 us instead of ~9-13.
//
// Limits, where a batch falls back to a socket per port: P must lie in the
// kernel's ephemeral range (ip_local_port_range; the socket option cannot widen
// it), the kernel must have the option, and the port is not held afterwards,
// so only allocate uses it, never reserve. TCP only: UDP's bind(0), when its
// one port is busy, walks every slot of the UDP hash table under each slot's
// lock (1.2 ms a check here, measured), where a bind of its own costs ~2 us.
// A port of ip_local_reserved_ports counts as busy (bind(0) never picks one);
// every batch excludes them anyway (src/options.ts, reservedPorts).
// While a check listens (about a microsecond) a socket filter drops every
// packet, so no connection can complete to it.
#pragma once

#include <cstdint>

#include "sockets.h"

namespace portalloc {

class Probe {
 public:
  Probe() = default;
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
  ~Probe() { Close(); }

  // Result of a check that could not be made this way: check P another way.
  static constexpr int kCannot = -1;

  // 0 when `port` could be bound at `address` by TCP a moment ago and is free
  // again now; EADDRINUSE when it could not; kCannot when this probe cannot
  // tell (see above).
  int Check(const Address& address, uint16_t port, uint32_t ephemeralLow, uint32_t ephemeralHigh);

  // An unbound unix datagram socket for testing claim names (claims.h),
  // opened on first use and closed with the probe; -1 if it cannot be opened.
  int Tester();

  void Close();

 private:
  // One socket per kind of address: IPv4, dual-stack IPv6, other IPv6.
  int& Slot(const Address& address);
  int Open(const Address& address);
  // Lets the port of a bound socket go; false (socket closed) if that failed.
  bool Unbind(int* fd);

  int fds_[3] = {-1, -1, -1};
  int tester_ = -1;
  // The kernel refused the socket option or the filter: a socket per port
  // from here on, rather than a failed setup before every port.
  bool unsupported_ = false;
};

}  // namespace portalloc
