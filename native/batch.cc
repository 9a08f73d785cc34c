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
  // First only ports nobody in this process has had within the window; then,
  // when the range has too few of those, ports this process handed out before
  // this call began, in candidate order (on from where its last batch of the
  // kind stopped: the oldest first). A process over its share of a small range
  // shared with others recycles its own ports first (OverShare).
  const bool recycle = OverShare(low, high);
  const bool usedUp = kernel && ledger::UsedUpRecently(request_.protocol, request_.windowMs);
  // (Each pass meets the same refused ports again: `refused` counts ports, the most one pass met.)
  uint32_t refused = 0;
  for (int pass : {recycle ? ledger::kRecycle : ledger::kStrict, ledger::kStrict, ledger::kReuse}) {
    if (pass == ledger::kStrict && usedUp) continue;
    candidates.Restart();
    result_.refused = 0;
    uint32_t port;
    while (Wanted() && candidates.Next(&port)) Try(port, pass);
    refused = std::max(refused, result_.refused);
    if (!Wanted()) break;
    if (pass == ledger::kStrict && kernel && !failed_) ledger::NoteUsedUp(request_.protocol);
  }
  result_.refused = refused;
  return !failed_;
}

// Whether a coordinated batch of a small range (claimed port by port) that
// other processes use too holds half or more of the ports they do not claim:
// then it recycles its own before it claims more, so that every process finds
// unclaimed ports (8 processes sharing 101 ports settle at about 11 claims
// each, 13 left free). Alone in the range, a process keeps to the ledger's rule.
bool Batch::OverShare(uint32_t low, uint32_t high) {
  if (!request_.coordinate || blocks_) return false;
  const claims::Share share = claims::ShareOf(low, high, probe().Tester());
  return share.mine > 0 && share.foreign > 0 && 2 * share.mine >= high - low + 1 - share.foreign;
}

// One candidate: true when it is kept (in flight, checked, bound if held).
bool Batch::Try(uint32_t port, int pass) {
  if (port == 0 || request_.exclude.Has(port)) return false;
  Taken taken{static_cast<uint16_t>(port), false, {}};
  if (!ledger::Acquire(port, request_.protocol, static_cast<ledger::Pass>(pass), &taken.prior, request_.since, now_)) return false;
  const char* syscall = "bind";
  const int state = request_.coordinate && !Admit(port, &taken.fresh) ? EADDRINUSE : CheckPort(port, &taken, &syscall);
  if (state == 0 && (request_.quota == nullptr || request_.quota->fetch_sub(1, std::memory_order_relaxed) > 0)) {
    taken_.push_back(taken);
    return true;
  }
  if (state == 0) stop_ = true;  // the other half found the last port first
  CloseSockets(taken.tcp, taken.udp);
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
