// Sockets and addresses: the one socket factory, binds, and the address types
// every kernel-facing file shares. Pure C++, no N-API.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

namespace portalloc {

enum Protocol : int { kTcp = 1, kUdp = 2, kBoth = 3 };

// Where ports are bound. The default is one dual-stack socket on [::] with
// IPV6_V6ONLY=0: its bind fails when the port is used on any local IPv4 or IPv6
// address, so one socket answers for every address.
struct Address {
  sockaddr_storage storage{};  // the address, port 0
  socklen_t length = 0;
  bool dualStack = true;
  int family() const { return storage.ss_family; }
};

// Sets *out from an IP literal ("" or "::": every local address, dual stack).
// An IPv6 literal may carry a zone, "fe80::1%lo" or "fe80::1%2": the scope id.
// False when `host` is not an address or names no interface.
bool ParseAddress(const char* host, Address* out);

// The port of an IPv4 or IPv6 socket address, and setting it on a copy.
uint16_t PortOf(const sockaddr_storage& s);
void SetPort(sockaddr_storage* s, uint16_t port);
// The default address where the process has no IPv6: every IPv4 address.
void FallBackToIpv4(Address* address);

// socket() with close-on-exec, IPV6_V6ONLY=0 for the dual-stack default; a
// dual-stack address falls back to IPv4 (in place) where IPv6 is missing.
// -1 with errno set on failure, nothing left open.
int OpenSocket(Address* address, int type);
// bind() of `fd` to `address` with `port`; 0 or -1 with errno set.
int BindPort(int fd, const Address& address, uint16_t port);
// The port a socket is bound to, or -1 with errno set.
int BoundPort(int fd);

// Whether a bind's errno means "this port is taken" (try the next one).
inline bool IsBusy(int error) { return error == 98 /* EADDRINUSE */ || error == 13 /* EACCES */; }

// 0 when `port` could be bound now for every protocol asked (a bind without
// SO_REUSEADDR), EADDRINUSE or EACCES when it could not, another errno on
// failure (*syscall names the call).
int CheckFree(const Address& address, int protocol, uint32_t port, const char** syscall);

// SO_REUSEADDR on each socket; 0 or the errno of the first failure.
int ShareAll(const std::vector<int>& fds);
// Closes every fd (on two threads for many: a bound TCP close costs ~4 us).
void CloseAll(std::vector<int>* fds);

// How many CPUs this thread may run on.
int UsableCpus();
// Whether a second thread would find a CPU now (/proc/loadavg's runnable count).
bool SecondCpuFree();

}  // namespace portalloc
