#include "candidates.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

namespace portalloc {

Candidates::Candidates(uint32_t low, uint32_t high, uint32_t start, bool byParity)
    : low_(low), high_(high), start_(start < low || start > high ? low : start), byParity_(byParity && high > low) {
  Restart();
}

void Candidates::Restart() {
  phase_ = 0;
  BeginPhase(start_);
}

// From `from`: every port of its parity (byParity), or every port.
void Candidates::BeginPhase(uint32_t from) {
  step_ = byParity_ ? 2 : 1;
  first_ = byParity_ ? low_ + ((from ^ low_) & 1) : low_;
  last_ = byParity_ ? high_ - ((from ^ high_) & 1) : high_;
  next_ = from < first_ || from > last_ ? first_ : from;
  remaining_ = first_ > last_ ? 0 : (last_ - first_) / step_ + 1;
}

bool Candidates::Next(uint32_t* port) {
  while (remaining_ == 0) {
    if (!byParity_ || phase_ == 1) return false;
    phase_ = 1;
    BeginPhase(start_ + 1 <= high_ ? start_ + 1 : start_ - 1);
  }
  *port = next_;
  next_ = next_ + step_ > last_ ? first_ : next_ + step_;
  --remaining_;
  return true;
}

// (xorshift32 per thread, seeded once by the kernel: a getrandom() per batch
// cost a single-port batch 5%.)
uint32_t RandomPreferredPort(uint32_t low, uint32_t high) {
  if (high - low < 1) return low;
  thread_local uint32_t state = 0;
  while (state == 0) {
    if (getrandom(&state, sizeof state, GRND_NONBLOCK) != sizeof state) {
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      state = static_cast<uint32_t>(now.tv_nsec) ^ static_cast<uint32_t>(getpid()) << 16;
    }
  }
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return low + 1 + 2 * (state % ((high - low + 1) / 2));
}

uint32_t Across(uint32_t start, uint32_t low, uint32_t high) {
  const uint32_t size = high - low + 1;
  uint32_t port = low + (start - low + size / 2) % size;
  if ((port ^ start) & 1) port = port + 1 <= high ? port + 1 : port - 1;
  return port;
}

}  // namespace portalloc
