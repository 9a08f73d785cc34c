#include "ledger.h"

#include <time.h>

#include <atomic>

namespace portalloc {
namespace ledger {
namespace {

constexpr uint64_t kFlight = 1ull << 63;
constexpr uint64_t kHeld = 1ull << 62;
constexpr uint64_t kLent = 1ull << 61;
constexpr uint64_t kDeadline = kLent - 1;

// Process-wide by design (see ledger.h): ports belong to the process, not to
// one environment, so this is the one static state of the addon's core.
std::atomic<uint64_t> stamps[65536];
// For lent ports: the LendClock value of their lend (Acquire's `since`).
std::atomic<uint32_t> lentAt[65536];
std::atomic<uint32_t> lendClock{0};

// Whether an Acquire in `pass` may take a port stamped `stamp` at `now`.
bool Takeable(uint32_t port, uint64_t stamp, Pass pass, uint64_t now, uint32_t since) {
  if (stamp == 0) return true;
  if (stamp & (kFlight | kHeld)) return false;
  if ((stamp & kDeadline) <= now) return true;
  if (pass == kReuse) return true;
  return pass == kCompat && (stamp & kLent) != 0 && lentAt[port].load(std::memory_order_acquire) <= since;
}

}  // namespace

uint64_t NowMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000;
}

bool Acquire(uint32_t port, Pass pass, uint64_t* prior, uint32_t since) {
  port &= 0xffff;
  std::atomic<uint64_t>& stamp = stamps[port];
  uint64_t seen = stamp.load(std::memory_order_acquire);
  if (seen == 0) {
    // (The common case, without reading the clock.)
    if (stamp.compare_exchange_strong(seen, kFlight, std::memory_order_acq_rel)) {
      *prior = 0;
      return true;
    }
  }
  const uint64_t now = NowMs();
  while (Takeable(port, seen, pass, now, since)) {
    if (stamp.compare_exchange_weak(seen, kFlight, std::memory_order_acq_rel)) {
      *prior = seen;
      return true;
    }
  }
  return false;
}

void Drop(uint32_t port, uint64_t prior) { stamps[port & 0xffff].store(prior, std::memory_order_release); }

void Give(uint32_t port, uint64_t deadline) { stamps[port & 0xffff].store(deadline & kDeadline, std::memory_order_release); }

void Lend(uint32_t port, uint64_t deadline) {
  lentAt[port & 0xffff].store(lendClock.fetch_add(1, std::memory_order_acq_rel) + 1, std::memory_order_release);
  stamps[port & 0xffff].store((deadline & kDeadline) | kLent, std::memory_order_release);
}

uint32_t LendClock() { return lendClock.load(std::memory_order_acquire); }

void Hold(uint32_t port) { stamps[port & 0xffff].store(kHeld, std::memory_order_release); }

void Unhold(uint32_t port, uint64_t deadline) {
  uint64_t held = kHeld;
  stamps[port & 0xffff].compare_exchange_strong(held, deadline & kDeadline, std::memory_order_acq_rel);
}

bool Held(uint32_t port) { return stamps[port & 0xffff].load(std::memory_order_acquire) == kHeld; }

}  // namespace ledger
}  // namespace portalloc
