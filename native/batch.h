// The kernel work: socket(), bind(), getsockname(), close(), in batches.
// Pure C++ with no N-API, so a batch can run on a worker thread (allocateAsync).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "claims.h"

namespace portalloc {

class Probe;  // probe.h

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

// Sets *out from an IP literal; "" means every local address (dual stack).
bool ParseAddress(const char* host, Address* out);

// Sets the port of an IPv4 or IPv6 socket address.
void SetPort(sockaddr_storage* s, uint16_t port);
// The port of an IPv4 or IPv6 socket address.
uint16_t PortOf(const sockaddr_storage& s);
// The default address where the process has no IPv6: every IPv4 address.
void FallBackToIpv4(Address* address);

struct BatchRequest {
  uint32_t count = 0;
  Address address;
  int protocol = kTcp;
  // Explicit ports: every port of [rangeFrom, rangeTo] is tried once, from
  // `start`, wrapping. rangeFrom == 0: the kernel chooses (bind to port 0).
  uint32_t rangeFrom = 0;
  uint32_t rangeTo = 0;
  uint32_t start = 0;
  // The kernel's ephemeral range (ip_local_port_range). When bind(0) has to
  // dig into the half of it that connect() uses, or the batch already holds
  // `kernelBudget` ports, the rest of the batch binds explicit ports of that
  // range instead: past ~14,000 held ports every bind(0) scans the whole range.
  uint32_t ephemeralLow = 32768;
  uint32_t ephemeralHigh = 60999;
  uint32_t kernelBudget = 8192;
  // Where the scan of the ephemeral range starts once bind(0) is left; 0: just
  // past the last port bind(0) gave. (The halves of a split batch start apart.)
  uint32_t scanStart = 0;
  // A large batch of kernel-chosen ports may run on two threads (SplitBatch
  // in batch.cc): 0 when a second CPU is free at the time, 2 whenever the
  // process may use two CPUs, 1 never.
  uint32_t threads = 1;
  // A bitmap of 65,536 bits that the halves of a split batch share: the ports
  // either half holds, so a scan skips them without a bind. Null: the batch
  // keeps its own.
  uint8_t* heldBitmap = nullptr;
  // Shared by the halves of a split batch: the ports still to find. Each
  // half takes one per port it finds and stops at 0, so a half whose thread
  // gets less CPU simply finds fewer. Null: the batch finds `count`.
  std::atomic<int64_t>* quota = nullptr;
  Bits exclude;  // a bitmap of 65,536 bits, or empty
  bool hold = false;             // keep the sockets open and return them
  // Without hold: checks ports of the ephemeral range with one socket each
  // for TCP and UDP instead of one per port (probe.h). Null: the batch opens
  // its own when it looks for more than one port. Used by one thread at a time.
  Probe* probe = nullptr;
  bool shared = false;           // SO_REUSEADDR on each held socket, after bind
  Coordination coordination;     // skip blocks other processes claim (claims.h)
  uint64_t ticket = 0;           // BeginBatch's, set by the caller
  bool probeOff = false;         // PORTALLOC_PROBE=0 (read on the JavaScript thread)
};

struct BatchResult {
  std::vector<int> ports;
  // With hold: one socket per port; for kBoth the TCP sockets, then the UDP ones.
  std::vector<int> fds;
  int error = 0;                  // errno of the failed call, 0 otherwise
  const char* syscall = nullptr;  // that call's name
  uint32_t errorPort = 0;         // the port it was called for, if any
  bool exhausted = false;         // no more free ports where the batch looked
  std::vector<int> claimBlocks;   // blocks the batch claimed, and their sockets
  std::vector<int> claimFds;
  // allocate's ports: not held once it returns, so kept off-limits to the
  // other batches of this process (EndBatch) instead; and what they were before.
  bool pinned = false;
  std::vector<uint64_t> pinnedBefore;
};

// Every batch begins with a ticket from BeginBatch(), taken on the JavaScript
// thread when the call is made (request.ticket), and ends with EndBatch(),
// called there when its result is delivered. The ports an allocate returns
// are not held by then, so they stay off-limits to every batch of this
// process that began before that end (bound sockets held until a batch was
// complete gave the same promise: the kernel refused them meanwhile); a batch
// that begins later may have them. Process-wide and lock-free.
uint64_t BeginBatch();
void EndBatch(const BatchResult& result);
// Whether `port` is being checked by a batch of this process now, or was
// returned by one that ended after `ticket` began.
bool PortBlocked(uint32_t port, uint64_t ticket);

// Runs a whole batch. On any failure every socket it opened is closed again.
// A large batch of kernel-chosen ports may be shared by two threads when a
// second CPU is free (request.threads; SplitBatch in batch.cc).
BatchResult RunBatch(const BatchRequest& request);

// 0 when `port` could be bound now for every protocol asked (a bind without
// SO_REUSEADDR), EADDRINUSE or EACCES when it could not, another errno on
// failure (*syscall names the call).
int CheckFree(const Address& address, int protocol, uint32_t port, const char** syscall);

// Sets SO_REUSEADDR on each socket; 0 or the errno of the first failure.
int ShareAll(const std::vector<int>& fds);

void CloseAll(std::vector<int>* fds);

}  // namespace portalloc
