// Which port another process's socket is bound to, for `portalloc check`:
// TCP sockets that are bound but not listening appear in no /proc/net table.
#pragma once

#include <napi.h>

namespace portalloc {

// socketPorts(pid, fds) -> [{ fd, port, protocol }] for the fds that are
// IPv4/IPv6 TCP or UDP sockets, read by duplicating each with pidfd_getfd
// (Linux 5.6+; needs ptrace access to the process). [] where it cannot.
Napi::Value SocketPorts(const Napi::CallbackInfo& info);

}  // namespace portalloc
