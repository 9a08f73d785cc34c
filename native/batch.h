// A batch: `count` distinct ports checked (and, for a reservation, bound and
// held) in one call. Pure C++ with no N-API, so a batch can run on a worker
// thread (allocateAsync). The order of operations for each port is written
// down in docs/internals.md; in short:
//   candidate -> excluded? -> ledger Acquire -> cross-process claim -> check
//   (probe, a socket, or TIME_WAIT) -> kept in flight
// and, once the batch has all its ports, every kept port is given or held in
// the ledger at once; a batch that fails drops every port it acquired.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "claims.h"
#include "ledger.h"
#include "sockets.h"

namespace portalloc {

class Candidates;  // candidates.h
class Probe;       // probe.h

// In a small range shared with other processes, a process over its share
// hands out again its own ports once this long has passed since it last did.
constexpr uint64_t kRecycleAgeMs = 25;
// How long such a process waits, at most, for another to give up a claim.
constexpr uint64_t kShedWaitMs = 2 * kRecycleAgeMs;
// Ranges of up to this many ports reuse the oldest handed out first (Batch::Reuse): sorting them costs
// ~0.1 ms; a larger range goes in candidate order, as the kernel's does (a sort of 64,000 ports a call: ~3 ms).
constexpr uint32_t kOldestFirstMax = 4096;

// A bitmap of 65,536 bits from JavaScript: borrowed for a call that runs on
// the JS thread (the typed array outlives it), copied for one that runs on another.
struct Bits {
  const uint8_t* data = nullptr;
  std::vector<uint8_t> copy;

  Bits() = default;
  Bits(const Bits& other) : copy(other.copy) { data = copy.empty() ? other.data : copy.data(); }
  Bits(Bits&& other) noexcept : data(other.data), copy(std::move(other.copy)) {}
  Bits& operator=(const Bits&) = delete;
  Bits& operator=(Bits&&) = delete;

  void Borrow(const uint8_t* bits) { data = bits; }
  void Copy(const uint8_t* bits, size_t bytes) {
    copy.assign(bits, bits + bytes);
    data = copy.data();
  }
  bool Has(uint32_t port) const { return data != nullptr && ((data[port >> 3] >> (port & 7)) & 1); }
};

// How each port of a batch is checked.
enum class Check : int {
  kFree,      // free now: the probe, or a socket bound and closed (allocate)
  kHold,      // bound and held by a socket per port and protocol (reserve)
  kTimeWait,  // left in TIME_WAIT on loopback (allocate with reserve: 'timewait')
};

struct BatchRequest {
  uint32_t count = 0;
  Address address;
  int protocol = kTcp;
  Check check = Check::kFree;
  // Every port of [rangeFrom, rangeTo] is tried once from `start`, wrapping.
  // rangeFrom == 0: the kernel's ephemeral range, from `start` (0: at random),
  // bind(0)'s parity first.
  uint32_t rangeFrom = 0;
  uint32_t rangeTo = 0;
  uint32_t start = 0;
  uint32_t ephemeralLow = 32768;  // ip_local_port_range
  uint32_t ephemeralHigh = 60999;
  // A large batch of the kernel's range may run on two threads (split.cc): 0
  // when a second CPU is free at the time, 2 whenever the process may use two, 1 never.
  uint32_t threads = 1;
  Bits exclude;
  bool shared = false;      // kHold: SO_REUSEADDR on each socket, after bind
  bool coordinate = false;  // cross-process claims (claims.h)
  bool probeOff = false;    // PORTALLOC_PROBE=0: a socket per port instead (probe.h)
  uint64_t windowMs = 20000;  // how long a given port stays out of every path
  uint32_t since = 0;         // ledger::Clock() when the call was made (the reuse pass's bound)
  // The probe this thread's synchronous calls share (null: the batch opens its own).
  Probe* probe = nullptr;
  // Set by split.cc: the ports still to find, shared by the two halves.
  std::atomic<int64_t>* quota = nullptr;
};

struct BatchResult {
  std::vector<int> ports;
  std::vector<int> fds;           // kHold: one socket per port; for kBoth TCP, then UDP
  int error = 0;                  // errno of the failed call, 0 otherwise
  const char* syscall = nullptr;  // that call's name
  uint32_t errorPort = 0;         // the port it was called for, if any
  bool exhausted = false;         // too few ports where the batch looked
  uint32_t found = 0;             // exhausted: how many it found
  uint32_t refused = 0;           // ports whose bind was refused (EACCES, EPERM)
  int refusedErrno = 0;           // the errno of the last refused bind
};

// Runs a whole batch (on two threads where split.cc decides so). On any
// failure every port it acquired is dropped and every socket it opened closed.
BatchResult RunBatch(const BatchRequest& request);

// One thread's share of a batch: finds ports and keeps them in flight, then
// Settle hands them over. The destructor drops and closes whatever is left.
class Batch {
 public:
  explicit Batch(const BatchRequest& request);
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Finds up to request.count ports (fewer when a shared quota runs out);
  // false on a system error (result().error). Too few is not an error here.
  bool Find();
  size_t found() const { return taken_.size(); }
  // Gives (or holds) every kept port in the ledger and moves the ports and
  // sockets into the result; cannot fail.
  BatchResult Settle();
  BatchResult& result() { return result_; }

 private:
  struct Taken {
    uint16_t port;
    bool fresh;           // its port claim was made by this batch
    ledger::Prior prior;  // the ledger stamps Acquire replaced
    int tcp = -1, udp = -1;  // kHold: its sockets
  };
  bool Wanted();
  void Scan(Candidates& candidates, int pass);
  void Reuse(Candidates& candidates, bool kernel, uint32_t low, uint32_t high);
  bool Shared(uint32_t low, uint32_t high, Candidates& candidates);
  void Recycle(const std::vector<claims::Owned>& owned, uint64_t minAgeMs, int pass);
  void Shed(std::vector<claims::Owned>* owned);
  void WaitForShed(Candidates& candidates, uint32_t rangeKey);
  bool Try(uint32_t port, int pass);
  bool Admit(uint32_t port, bool* freshClaim);
  int CheckPort(uint32_t port, Taken* taken, const char** syscall);
  int BindEach(uint32_t port, Taken* taken, const char** syscall);
  void Fail(int error, const char* syscall, uint32_t port);
  Probe& probe();

  const BatchRequest& request_;
  Address address_;
  BatchResult result_;
  std::vector<Taken> taken_;
  Probe* probe_ = nullptr;      // the request's, or ownProbe_
  Probe* ownProbe_ = nullptr;
  bool blocks_ = false;             // claims by block, not by port
  // Per block this batch has asked about: the answer, and for a block of its
  // own which of its 32 ports another process claims alone.
  struct BlockSeen {
    uint32_t block = 0;
    bool asked = false;
    uint8_t answer = 0;        // claims::Answer
    uint32_t foreignPorts = 0;
  };
  BlockSeen& Seen(uint32_t block);
  std::vector<BlockSeen> blockSeen_;  // by block for large batches, a short list for small ones
  bool failed_ = false;
  bool stop_ = false;  // the shared quota ran out
  uint64_t now_ = 0;   // the ledger's clock when the batch began (deadlines are milliseconds)
};

}  // namespace portalloc
