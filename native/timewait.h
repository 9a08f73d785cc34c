// The TIME_WAIT reservation (Yelp's ephemeral-port-reserve): a port is
// listened on, connected to and closed server side first, so it sits in
// TIME_WAIT for 60 s. Meanwhile bind(0), connect() and binds without
// SO_REUSEADDR skip it; a server that sets SO_REUSEADDR (Node's net) can
// listen on it. No process needs to stay alive. Batches run it per port as
// their check (batch.h, Check::kTimeWait), after the ledger and the claims.
#pragma once

#include <cstdint>

#include "sockets.h"

namespace portalloc {

// Puts `port` into TIME_WAIT at `address` (a loopback address), then checks
// that the kernel kept it (net.ipv4.tcp_max_tw_buckets may refuse): 0 when
// reserved, EADDRINUSE or EACCES when the port is busy, ENOSPC (*syscall
// "timewait") when the kernel did not keep the TIME_WAIT, another errno on failure.
int PutInTimeWait(const Address& address, uint16_t port, const char** syscall);

}  // namespace portalloc
