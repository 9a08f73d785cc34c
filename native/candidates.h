// The order in which a batch tries ports: a range from a start, wrapping; for
// the kernel's range, the ports of the start's parity first (bind(0)'s half,
// which leaves the other to connect()), then the rest.
#pragma once

#include <cstdint>

namespace portalloc {

class Candidates {
 public:
  // [low, high] from `start` (outside the range: from low). byParity: start's
  // parity first, then the other; otherwise port by port.
  Candidates(uint32_t low, uint32_t high, uint32_t start, bool byParity);
  // The next port to try; false once every port of the range was offered.
  bool Next(uint32_t* port);
  // The same order again, from the start (a second pass).
  void Restart();

 private:
  void BeginPhase(uint32_t from);
  uint32_t low_, high_, start_;
  bool byParity_;
  int phase_ = 0;
  uint32_t first_ = 0, last_ = 0, next_ = 0, remaining_ = 0, step_ = 1;
};

// A port of [low, high] at random, of the parity bind(0) hands out first
// (the one opposite to low's).
uint32_t RandomPreferredPort(uint32_t low, uint32_t high);
// The port half of [low, high] away from `start`, of start's parity.
uint32_t Across(uint32_t start, uint32_t low, uint32_t high);

}  // namespace portalloc
