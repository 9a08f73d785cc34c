// Every N-API entry point of the addon (addon.cc registers them): requests in,
// results out, the async worker, type-tagged holds, and the field table the
// TypeScript side packs requests with. TypeScript validates every value; what
// arrives malformed here is a bug in portalloc, thrown as a TypeError.
#pragma once

#include <napi.h>

namespace portalloc {
namespace api {

// Per-environment instance data (main thread or a worker): the holds still
// open there, and the probe its synchronous calls share (probe.h).
void SetUp(Napi::Env env);

// { count: 0, protocol: 1, ... }: where binding.ts puts each field of a request.
Napi::Object Fields(Napi::Env env);

// allocate(fields, host, exclude?) -> ports | port | { ports, fds, hold } |
//   { errno, syscall, port } | { exhausted, found, refused, refusedErrno }
Napi::Value Allocate(const Napi::CallbackInfo& info);
// allocateAsync(...): a Promise of the same; the batch runs on libuv's pool.
Napi::Value AllocateAsync(const Napi::CallbackInfo& info);
// release(hold): closes the hold's sockets and gives its ports (idempotent).
Napi::Value Release(const Napi::CallbackInfo& info);
// detach(hold): forgets the sockets without closing them (the caller owns them now).
Napi::Value Detach(const Napi::CallbackInfo& info);
// share(hold): SO_REUSEADDR on every socket; 0 or an errno.
Napi::Value Share(const Napi::CallbackInfo& info);
// closeProbe(): closes this environment's probe sockets (reopened on use).
Napi::Value CloseProbe(const Napi::CallbackInfo& info);
// checkFree(host, protocol, port) -> { errno, syscall }: a bind without SO_REUSEADDR.
Napi::Value CheckFree(const Napi::CallbackInfo& info);
// checkListen(host, port, ipv6Only) -> { errno, syscall }: could Node listen (check.h).
Napi::Value CheckListen(const Napi::CallbackInfo& info);
// tryPort(host, port, ipv6Only, claim, since, pass, lender) -> { errno, syscall, prior, fresh }:
// a drop-in's check of one port, claimed (claim 1) alone, (2) by its block, as
// a random port of the kernel's range, or (0) not at all; acquired with the
// ledger pass `pass` (kCompat: also a port this thread, `lender` (its
// threadId), lent before, as the original answers; kStrict for a random port;
// kReuse, a search's last resort); on errno 0 the port
// is in flight for the caller until lend(port, windowMs, lender) or dropPort(port, prior, fresh).
// EADDRINUSE with syscall "claim": another process claims the port.
Napi::Value TryPort(const Napi::CallbackInfo& info);
Napi::Value Lend(const Napi::CallbackInfo& info);
// ledgerClock() -> the ledger's handoff clock (ledger.h, Clock), read by a drop-in call when it begins.
Napi::Value LedgerClock(const Napi::CallbackInfo& info);
// oldestFirst(low, high) -> the TCP ports of [low, high], handed out longest ago first (ledger.h, OldestFirst):
// the order of a drop-in search's last resort.
Napi::Value OldestFirst(const Napi::CallbackInfo& info);
Napi::Value DropPort(const Napi::CallbackInfo& info);
// releaseClaims(): closes every claim (fds are short); claimCount().
Napi::Value ReleaseClaims(const Napi::CallbackInfo& info);
Napi::Value ClaimCount(const Napi::CallbackInfo& info);
// lookup(host) -> { addresses } | { eai, message, errno? }: getaddrinfo, blocking.
Napi::Value Lookup(const Napi::CallbackInfo& info);

}  // namespace api
}  // namespace portalloc
