// checkListen: could a server that sets SO_REUSEADDR (Node's net, on Unix)
// listen on this port now? The check get-port, portfinder and detect-port make,
// in one socket instead of one Node server per interface.
#pragma once

#include <napi.h>

namespace portalloc {

// checkListen(host, port, ipv6Only) -> { errno, syscall }: errno 0 when a
// SO_REUSEADDR socket could bind and listen. host '' is every local address
// (one dual-stack socket on [::]); ipv6Only applies to an IPv6 host.
Napi::Value CheckListen(const Napi::CallbackInfo& info);

}  // namespace portalloc
