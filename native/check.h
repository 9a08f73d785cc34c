// The check the drop-ins make: could a Node server listen on this port now?
// SO_REUSEADDR + bind + listen, as libuv does. Pure C++, no N-API.
#pragma once

#include <cstdint>

#include "sockets.h"

namespace portalloc {

// 0 when a Node server could listen on `port` at `address` now (a port in
// TIME_WAIT passes, as for Node); EADDRINUSE when a socket listens there or
// holds it without SO_REUSEADDR, or when a reservation of this process holds
// it (shared holds included, which the kernel alone would pass); another
// errno on failure, *syscall naming the call. ipv6Only: an IPv6 address
// without its IPv4 twin; "::" with ipv6Only is IPv6 only.
int CheckListen(Address address, uint16_t port, bool ipv6Only, const char** syscall);

}  // namespace portalloc
