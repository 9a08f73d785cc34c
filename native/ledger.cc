#include "ledger.h"

#include <time.h>

#include <algorithm>
#include <atomic>

namespace portalloc {
namespace ledger {
namespace {

constexpr uint64_t kFlight = 1ull << 63;
constexpr uint64_t kHeld = 1ull << 62;
constexpr uint64_t kLent = 1ull << 61;
constexpr uint64_t kBound = 1ull << 60;  // given or lent, and a check found it bound since
// A lent port's lender (bits 44-59): the thread whose drop-in lent it (Lend). A deadline is
// milliseconds of CLOCK_MONOTONIC: 44 bits last 557 years.
constexpr int kLenderShift = 44;
constexpr uint64_t kLender = 0xffffull << kLenderShift;
constexpr uint64_t kDeadline = (1ull << kLenderShift) - 1;

// Process-wide by design (see ledger.h): ports belong to the process, not to
// one environment, so these are the static state of the addon's core.
// [0]: TCP, [1]: UDP.
std::atomic<uint64_t> stamps[2][65536];
// For given and lent ports: the clock's tick when they were handed out.
std::atomic<uint32_t> handedAt[2][65536];
std::atomic<uint32_t> clock{0};
constexpr uint32_t kPending = UINT32_MAX;  // given, not delivered yet: reusable by nobody

bool Takeable(uint64_t stamp, uint32_t handed, Pass pass, uint64_t now, uint32_t since, uint32_t lender) {
  if (pass == kRecycle || pass == kRecycleBound) {
    return stamp != 0 && !(stamp & (kFlight | kHeld)) && handed <= since && (pass == kRecycle || (stamp & kBound) != 0);
  }
  if (stamp == 0) return true;
  if (stamp & (kFlight | kHeld)) return false;
  if ((stamp & kDeadline) <= now) return true;
  if (pass == kStrict || handed > since) return false;  // (handed out after the caller began)
  // kCompat: lent by a drop-in of the caller's own thread (an original's memory is its module's).
  return pass == kReuse || ((stamp & kLent) != 0 && ((stamp & kLender) >> kLenderShift) == (lender & 0xffff));
}

bool AcquireOne(int i, uint32_t port, Pass pass, uint64_t* prior, uint32_t since, uint64_t now, uint32_t lender) {
  std::atomic<uint64_t>& stamp = stamps[i][port];
  uint64_t seen = stamp.load(std::memory_order_acquire);
  if (seen == 0 && pass != kRecycle && pass != kRecycleBound && stamp.compare_exchange_strong(seen, kFlight, std::memory_order_acq_rel)) {
    *prior = 0;  // (the common case, without reading the clock)
    return true;
  }
  while (Takeable(seen, handedAt[i][port].load(std::memory_order_acquire), pass, now, since, lender)) {
    if (stamp.compare_exchange_weak(seen, kFlight, std::memory_order_acq_rel)) {
      *prior = seen;
      return true;
    }
  }
  return false;
}

// Calls f(stamp) for the stamps `protocol` names.
template <typename F>
void Each(uint32_t port, int protocol, F f) {
  if (protocol & 1) f(stamps[0][port & 0xffff], 0);
  if (protocol & 2) f(stamps[1][port & 0xffff], 1);
}

// A tick of the clock, for what is handed out now.
uint32_t Tick() { return clock.fetch_add(1, std::memory_order_acq_rel) + 1; }

}  // namespace

uint64_t NowMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000;
}

bool Acquire(uint32_t port, int protocol, Pass pass, Prior* prior, uint32_t since, uint64_t now, uint32_t lender) {
  port &= 0xffff;
  if ((protocol & 1) && !AcquireOne(0, port, pass, &prior->tcp, since, now, lender)) return false;
  if ((protocol & 2) && !AcquireOne(1, port, pass, &prior->udp, since, now, lender)) {
    if (protocol & 1) stamps[0][port].store(prior->tcp, std::memory_order_release);
    return false;
  }
  return true;
}

void Drop(uint32_t port, int protocol, const Prior& prior) {
  Each(port, protocol, [&](std::atomic<uint64_t>& stamp, int i) { stamp.store(i == 0 ? prior.tcp : prior.udp, std::memory_order_release); });
}

void SeenBound(Prior* prior) {
  for (uint64_t* stamp : {&prior->tcp, &prior->udp}) {
    if (*stamp != 0 && !(*stamp & (kFlight | kHeld))) *stamp |= kBound;
  }
}

uint32_t Clock() { return clock.load(std::memory_order_acquire); }

void Give(uint32_t port, int protocol, uint64_t deadline) {
  Each(port, protocol, [&](std::atomic<uint64_t>& stamp, int i) {
    handedAt[i][port & 0xffff].store(kPending, std::memory_order_release);
    stamp.store(deadline & kDeadline, std::memory_order_release);
  });
}

void Delivered(const std::vector<int>& ports, int protocol) {
  const uint32_t tick = Tick();
  for (int port : ports) {
    Each(static_cast<uint32_t>(port), protocol, [&](std::atomic<uint64_t>&, int i) { handedAt[i][port & 0xffff].store(tick, std::memory_order_release); });
  }
}


void Lend(uint32_t port, uint64_t deadline, uint32_t lender) {
  handedAt[0][port & 0xffff].store(Tick(), std::memory_order_release);
  stamps[0][port & 0xffff].store((deadline & kDeadline) | (static_cast<uint64_t>(lender & 0xffff) << kLenderShift) | kLent, std::memory_order_release);
}

void Hold(uint32_t port, int protocol) {
  Each(port, protocol, [](std::atomic<uint64_t>& stamp, int) { stamp.store(kHeld, std::memory_order_release); });
}

void Unhold(uint32_t port, int protocol, uint64_t deadline) {
  const uint32_t tick = Tick();
  Each(port, protocol, [&](std::atomic<uint64_t>& stamp, int i) {
    handedAt[i][port & 0xffff].store(tick, std::memory_order_release);
    uint64_t held = kHeld;
    stamp.compare_exchange_strong(held, deadline & kDeadline, std::memory_order_acq_rel);
  });
}

bool Held(uint32_t port, int protocol) {
  bool held = false;
  Each(port, protocol, [&](std::atomic<uint64_t>& stamp, int) { held = held || stamp.load(std::memory_order_acquire) == kHeld; });
  return held;
}

std::vector<uint32_t> OldestFirst(uint32_t low, uint32_t high, int protocol) {
  std::vector<std::pair<uint32_t, uint32_t>> ages;  // (tick handed out at, port)
  ages.reserve(high - low + 1);
  for (uint32_t port = low; port <= high; ++port) {
    uint32_t tick = 0;
    // (kBoth: the later of its two handoffs; kPending, not delivered yet, sorts last.)
    Each(port, protocol, [&](std::atomic<uint64_t>&, int i) { tick = std::max(tick, handedAt[i][port & 0xffff].load(std::memory_order_acquire)); });
    ages.emplace_back(tick, port);
  }
  std::sort(ages.begin(), ages.end());
  std::vector<uint32_t> ports;
  ports.reserve(ages.size());
  for (const auto& age : ages) ports.push_back(age.second);
  return ports;
}

namespace {
std::atomic<uint64_t> usedUp[4];  // by protocol bits: NowMs() of the last short strict pass
}  // namespace

void NoteUsedUp(int protocol) { usedUp[protocol & 3].store(NowMs(), std::memory_order_relaxed); }

bool UsedUpRecently(int protocol, uint64_t windowMs) {
  const uint64_t at = usedUp[protocol & 3].load(std::memory_order_relaxed);
  return at != 0 && NowMs() - at < std::max<uint64_t>(windowMs / 20, 100);
}

}  // namespace ledger
}  // namespace portalloc
