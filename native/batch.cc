#include "batch.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>

#include "candidates.h"
#include "claims.h"
#include "ledger.h"
#include "probe.h"
#include "timewait.h"

namespace portalloc {
namespace {

// Below this many ports (16 blocks) a range is claimed port by port (claims.h).
constexpr uint32_t kBlockClaimsFrom = 512;

bool Refused(int error) { return error == EACCES || error == EPERM; }

void CloseSockets(int tcp, int udp) {
  if (tcp >= 0) close(tcp);
  if (udp >= 0) close(udp);
}

}  // namespace

Batch::Batch(const BatchRequest& request) : request_(request), address_(request.address) {
  const uint32_t size = request.rangeFrom == 0 ? 0 : request.rangeTo - request.rangeFrom + 1;
  blocks_ = request.rangeFrom == 0 || size >= kBlockClaimsFrom;
  probe_ = request.probe;
  now_ = ledger::NowMs();
}

Batch::~Batch() {
  for (const Taken& taken : taken_) {
    ledger::Drop(taken.port, request_.protocol, taken.prior);
    if (taken.fresh) claims::Unport(taken.port);  // (a claim made for a port never handed out)
    CloseSockets(taken.tcp, taken.udp);
  }
  delete ownProbe_;
}

Probe& Batch::probe() {
  if (probe_ == nullptr) probe_ = ownProbe_ = new Probe();
  return *probe_;
}

bool Batch::Wanted() {
  if (stop_ || failed_) return false;
  return taken_.size() < request_.count;
}

bool Batch::Find() {
  taken_.reserve(request_.count);
  const bool kernel = request_.rangeFrom == 0;
  const uint32_t low = kernel ? request_.ephemeralLow : request_.rangeFrom;
  const uint32_t high = kernel ? request_.ephemeralHigh : request_.rangeTo;
  const uint32_t start = request_.start != 0 ? request_.start : kernel ? RandomPreferredPort(low, high) : low;
  Candidates candidates(low, high, start, kernel);
  if (request_.coordinate && !blocks_ && Shared(low, high, candidates)) return !failed_;
  // First only ports nobody in this process has had within the window; then,
  // when the range has too few of those, ports this process handed out before
  // this call began, the oldest first (Reuse).
  const bool usedUp = kernel && ledger::UsedUpRecently(request_.protocol, request_.windowMs);
  if (!usedUp) {
    Scan(candidates, ledger::kStrict);
    if (!Wanted()) return !failed_;
    if (kernel && !failed_) ledger::NoteUsedUp(request_.protocol);
  }
  Reuse(candidates, kernel, low, high);
  return !failed_;
}

// The reuse pass. A range of up to kOldestFirstMax ports: its ports handed
// out longest ago first, by the ledger's clock (one order for every thread; a
// cursor of one thread would meet ports another thread gave a moment ago).
// The kernel's range and larger ranges: in candidate order, on from where the
// last batch of the kind stopped (a sort of ~28,000 ports a call would cost
// more than it saves there).
void Batch::Reuse(Candidates& candidates, bool kernel, uint32_t low, uint32_t high) {
  if (kernel || high - low + 1 > kOldestFirstMax) return Scan(candidates, ledger::kReuse);
  const uint32_t refused = result_.refused;
  result_.refused = 0;
  for (uint32_t port : ledger::OldestFirst(low, high, request_.protocol)) {
    if (!Wanted()) break;
    Try(port, ledger::kReuse);
  }
  result_.refused = std::max(refused, result_.refused);
}

void Batch::Scan(Candidates& candidates, int pass) {
  // (Each pass meets the same refused ports again: `refused` counts ports, the most one pass met.)
  const uint32_t refused = result_.refused;
  result_.refused = 0;
  candidates.Restart();
  uint32_t port;
  while (Wanted() && candidates.Next(&port)) Try(port, pass);
  result_.refused = std::max(refused, result_.refused);
}

// A small range that other processes claim ports of too (claims by port):
// false when no other process does (then the ledger's rule alone, as above).
// When few ports are left unclaimed, a process that holds at least as many as
// are left is over its share: it gives up one claim per call, of a port last
// handed out 1.5 kRecycleAgeMs ago or more, and hands out again its own port
// handed out longest ago (kRecycleAgeMs ago at least, so that its caller has
// had time to bind it; the check skips it if it is bound) before it claims
// more. So a process holds about what its rate of calls needs, and the
// others find ports to claim (docs/internals.md, "Small ranges").
bool Batch::Shared(uint32_t low, uint32_t high, Candidates& candidates) {
  const claims::Share share = claims::ShareOf(low, high, probe().Tester());
  if (share.foreign == 0) return false;
  const uint32_t size = high - low + 1;
  const uint32_t unclaimed = size - std::min(size, share.mine + share.foreign);
  std::vector<claims::Owned> owned = claims::OwnedIn(low, high);
  if (unclaimed < std::max(2u, size / 16) && share.mine >= unclaimed) {
    Shed(&owned);
    Recycle(owned, kRecycleAgeMs, ledger::kRecycle);
  }
  Scan(candidates, ledger::kStrict);
  Recycle(owned, 0, ledger::kRecycleBound);
  WaitForShed(candidates, (low << 16) | high);
  Recycle(owned, 0, ledger::kRecycle);  // the oldest of its own first, then any port given before
  Reuse(candidates, false, low, high);
  return true;
}

// Tries this process's own ports handed out at least minAgeMs ago, oldest first.
void Batch::Recycle(const std::vector<claims::Owned>& owned, uint64_t minAgeMs, int pass) {
  for (const claims::Owned& own : owned) {
    if (!Wanted() || own.givenAt + minAgeMs > now_) break;
    Try(own.port, pass);
  }
}

// Every port of the range claimed, none of this process's safe to hand out
// again (a process that has just joined a busy range): waits, up to
// kShedWaitMs, for another process to give a claim up (its ports age too),
// rather than hand out a port its own caller got a moment ago.
// A wait that found nothing (the range's claims are held by processes that
// are not calling, so none gives one up) is not repeated for a second.
void Batch::WaitForShed(Candidates& candidates, uint32_t rangeKey) {
  // Process-wide, as claims are: the range whose last wait found nothing, and when.
  static std::atomic<uint64_t> fruitless{0};  // (NowMs() << 32) | rangeKey
  const uint64_t last = fruitless.load(std::memory_order_relaxed);
  if (!Wanted() || (last != 0 && (last & 0xffffffffu) == rangeKey && ledger::NowMs() - (last >> 32) < 1000)) return;
  const uint64_t deadline = ledger::NowMs() + kShedWaitMs;
  while (Wanted() && ledger::NowMs() < deadline) {
    usleep(2000);
    Scan(candidates, ledger::kStrict);
  }
  if (Wanted()) fruitless.store((ledger::NowMs() << 32) | rangeKey, std::memory_order_relaxed);
}

// Gives up the claim of the own port handed out longest ago that no
// reservation holds and no batch has in flight (acquired here while its claim
// goes), if that was 1.5 kRecycleAgeMs ago or more: more ports than this
// process needs, which another process can claim.
void Batch::Shed(std::vector<claims::Owned>* owned) {
  for (auto own = owned->begin(); own != owned->end() && own->givenAt + kRecycleAgeMs * 3 / 2 <= now_; ++own) {
    ledger::Prior prior;
    if (!ledger::Acquire(own->port, request_.protocol, ledger::kRecycle, &prior, request_.since, now_)) continue;
    claims::Unport(own->port);
    ledger::Drop(own->port, request_.protocol, prior);
    owned->erase(own);
    return;
  }
}

// One candidate: true when it is kept (in flight, checked, bound if held).
bool Batch::Try(uint32_t port, int pass) {
  if (port == 0 || request_.exclude.Has(port)) return false;
  Taken taken{static_cast<uint16_t>(port), false, {}};
  if (!ledger::Acquire(port, request_.protocol, static_cast<ledger::Pass>(pass), &taken.prior, request_.since, now_)) return false;
  const char* syscall = "bind";
  const bool admitted = !request_.coordinate || Admit(port, &taken.fresh);
  const int state = admitted ? CheckPort(port, &taken, &syscall) : EADDRINUSE;
  if (state == 0 && (request_.quota == nullptr || request_.quota->fetch_sub(1, std::memory_order_relaxed) > 0)) {
    taken_.push_back(taken);
    return true;
  }
  if (state == 0) stop_ = true;  // the other half found the last port first
  CloseSockets(taken.tcp, taken.udp);
  if (admitted && state == EADDRINUSE) ledger::SeenBound(&taken.prior);
  ledger::Drop(port, request_.protocol, taken.prior);
  if (taken.fresh) claims::Unport(port);
  if (Refused(state)) {
    ++result_.refused;
    result_.refusedErrno = state;
  }
  if (state != 0 && !IsBusy(state) && !Refused(state)) Fail(state, syscall, port);
  return false;
}

// Whether another process's claim keeps this batch off `port`.
bool Batch::Admit(uint32_t port, bool* freshClaim) {
  if (!blocks_) return claims::Port(port, probe().Tester(), freshClaim) != claims::kForeign;
  const uint32_t block = port >> claims::kBlockShift;
  BlockSeen& seen = Seen(block);
  if (!seen.asked) {
    seen.answer = claims::Block(block, probe().Tester(), &seen.foreignPorts);
    seen.asked = true;
  }
  if (seen.answer == claims::kForeign) return false;
  // Unclaimed (giving way): still never a port another process claims alone.
  if (seen.answer == claims::kUnclaimed) return !claims::PortClaimed(port, probe().Tester());
  return !((seen.foreignPorts >> (port & ((1u << claims::kBlockShift) - 1))) & 1);
}

// The entry for `block`: indexed by block for batches of many ports, a short
// list for the rest (most calls: one port, one block, no 16 KB table to clear).
Batch::BlockSeen& Batch::Seen(uint32_t block) {
  if (request_.count > 64) {
    if (blockSeen_.empty()) blockSeen_.resize(claims::kBlocks);
    return blockSeen_[block];
  }
  for (BlockSeen& seen : blockSeen_) {
    if (seen.block == block) return seen;
  }
  blockSeen_.push_back(BlockSeen{block});
  return blockSeen_.back();
}

// 0 when `port` is free (and, for kHold, bound); an errno otherwise.
int Batch::CheckPort(uint32_t port, Taken* taken, const char** syscall) {
  if (request_.check == Check::kTimeWait) return PutInTimeWait(address_, static_cast<uint16_t>(port), syscall);
  if (request_.check == Check::kFree && request_.protocol == kTcp && !request_.probeOff) {
    const int state = probe().Check(address_, static_cast<uint16_t>(port), request_.ephemeralLow, request_.ephemeralHigh);
    if (state != Probe::kCannot) return state;
  }
  return BindEach(port, taken, syscall);
}

// A socket per protocol bound to `port`: kept in *taken for kHold (SO_REUSEADDR
// set after the bind when shared), closed otherwise.
int Batch::BindEach(uint32_t port, Taken* taken, const char** syscall) {
  int fds[2] = {-1, -1};
  int error = 0;
  const int on = 1;
  const bool hold = request_.check == Check::kHold;
  for (int i = 0; i < 2 && error == 0; ++i) {
    if (!(request_.protocol & (i == 0 ? kTcp : kUdp))) continue;
    fds[i] = OpenSocket(&address_, i == 0 ? SOCK_STREAM : SOCK_DGRAM);
    if (fds[i] < 0) {
      *syscall = "socket";
      error = errno;
    } else if (BindPort(fds[i], address_, static_cast<uint16_t>(port)) != 0) {
      *syscall = "bind";
      error = errno;
    } else if (hold && request_.shared && setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
      *syscall = "setsockopt";
      error = errno;
    }
  }
  if (error == 0 && hold) {
    taken->tcp = fds[0];
    taken->udp = fds[1];
  } else {
    CloseSockets(fds[0], fds[1]);
  }
  return error;
}

void Batch::Fail(int error, const char* syscall, uint32_t port) {
  failed_ = true;
  result_.error = error;
  result_.syscall = syscall;
  result_.errorPort = port;
}

BatchResult Batch::Settle() {
  // A range scanned upward ('ascending'): the lowest ports first, reused ones included.
  if (request_.rangeFrom != 0 && request_.start == request_.rangeFrom) {
    std::sort(taken_.begin(), taken_.end(), [](const Taken& a, const Taken& b) { return a.port < b.port; });
  }
  const uint64_t deadline = ledger::NowMs() + request_.windowMs;
  result_.ports.reserve(taken_.size());
  for (const Taken& taken : taken_) {
    if (request_.check == Check::kHold) {
      ledger::Hold(taken.port, request_.protocol);
    } else {
      ledger::Give(taken.port, request_.protocol, deadline);
    }
    result_.ports.push_back(taken.port);
  }
  if (request_.coordinate) claims::Touch(result_.ports);
  // For kBoth: the TCP sockets, then the UDP ones.
  for (const Taken& taken : taken_) if (taken.tcp >= 0) result_.fds.push_back(taken.tcp);
  for (const Taken& taken : taken_) if (taken.udp >= 0) result_.fds.push_back(taken.udp);
  taken_.clear();
  return std::move(result_);
}

bool SplitBatch(const BatchRequest& request, BatchResult* out);  // split.cc

BatchResult RunBatch(const BatchRequest& request) {
  BatchResult result;
  if (SplitBatch(request, &result)) return result;
  Batch batch(request);
  if (!batch.Find()) return std::move(batch.result());
  if (batch.found() < request.count) {
    BatchResult& short_ = batch.result();
    short_.exhausted = true;
    short_.found = static_cast<uint32_t>(batch.found());
    return std::move(short_);
  }
  return batch.Settle();
}

}  // namespace portalloc
