// The TIME_WAIT reservation (Yelp's ephemeral-port-reserve): a port left in
// TIME_WAIT on loopback for 60 s, with no socket open afterwards. During that
// time bind(0) and connect() skip it and a non-reuse bind fails, while a
// SO_REUSEADDR server (Node's net) can listen on it.
#pragma once

#include <napi.h>

namespace portalloc {

// timeWait(request) -> { ports } | { errno, syscall, port } | { exhausted, found }:
// the request of allocate(); host is a loopback address, protocol TCP.
Napi::Value TimeWait(const Napi::CallbackInfo& info);
// timeWaitAsync(request) -> Promise of the same, on libuv's thread pool.
Napi::Value TimeWaitAsync(const Napi::CallbackInfo& info);

}  // namespace portalloc
