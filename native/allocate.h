// allocate / reserve: one batch per call, one JS-to-C++ crossing per batch.
#pragma once

#include <napi.h>

namespace portalloc {

struct BatchRequest;  // batch.h
struct BatchResult;

// A function that runs a whole batch without N-API (RunBatch, RunTimeWait).
using BatchRunner = BatchResult (*)(const BatchRequest&);

// run(request) on this thread: the result, with its hold and claims when it kept sockets.
Napi::Value RunSync(const Napi::CallbackInfo& info, BatchRunner run);
// run(request) on libuv's thread pool: a Promise of the same.
Napi::Value RunAsync(const Napi::CallbackInfo& info, BatchRunner run, const char* name);

// allocate(request) -> { ports } | { errno, syscall, port } | { exhausted, found }
Napi::Value Allocate(const Napi::CallbackInfo& info);
// closeProbe(): closes the sockets of this environment's probe (probe.h); the
// next synchronous allocate opens them again.
Napi::Value CloseProbe(const Napi::CallbackInfo& info);
// allocateAsync(request) -> Promise of the same; the batch runs on libuv's thread pool.
Napi::Value AllocateAsync(const Napi::CallbackInfo& info);
// checkFree(host, protocol, port) -> 0 | errno; { errno, syscall } on failure of socket().
Napi::Value CheckFree(const Napi::CallbackInfo& info);
// lookup(host) -> { addresses: string[] } | { eai, message }: getaddrinfo, blocking.
Napi::Value Lookup(const Napi::CallbackInfo& info);

}  // namespace portalloc
