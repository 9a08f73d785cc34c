// The ledger: who has each port in this process. The one owner of that fact.
//
// One 64-bit stamp per port number (TCP and UDP share it: stricter than the
// kernel, never looser), process-wide because ports are: every thread and
// every environment (main thread, worker threads) of the process reads and
// writes the same stamps. Lock-free: each change is a compare-and-swap.
//
// A stamp is one of:
//   free           0, or a deadline that has passed
//   in flight      a batch (or a drop-in check) owns the port while it checks
//                  and binds it: nobody else in the process may touch it
//   held           a reservation's socket holds it
//   given          handed out (allocate, a released hold) until a deadline;
//                  `lent` marks a port handed out by a drop-in (get-port,
//                  portfinder, detect-port), whose own checks ignore lent ports
//                  so that they answer as the originals do
//
// THE RULE every path follows (docs/internals.md): acquire a port here before
// checking or binding it; give it, hold it, or drop it back when done. No path
// checks or binds a port it has not acquired, so two callers in this process
// never get the same port, and a port given stays out of every path for the
// claim window, held ports until released.
#pragma once

#include <cstdint>

namespace portalloc {
namespace ledger {

// Milliseconds of CLOCK_MONOTONIC (shared by every thread of the process).
uint64_t NowMs();

// Which stamps an Acquire may take over, besides free ones.
enum Pass : int {
  kStrict = 0,  // only free ports
  kReuse = 1,   // also ports given (or lent) before: a range this process used up
  kCompat = 2,  // also lent ports: a drop-in's check, answering as its original
};

// Takes `port` for the caller if `pass` allows; *prior keeps the stamp it
// replaced (for Drop). False when another caller has it. kCompat takes a lent
// port only if it was lent before the caller began (`since`, a LendClock()
// value): drop-in calls in flight at the same time never share a port, and a
// call that begins after another has delivered answers as the original would.
bool Acquire(uint32_t port, Pass pass, uint64_t* prior, uint32_t since = 0);
// Puts back the stamp an Acquire replaced: the port was not wanted after all.
void Drop(uint32_t port, uint64_t prior);
// The port is handed out: out of every path until `deadline` (NowMs-based).
void Give(uint32_t port, uint64_t deadline);
// A drop-in hands the port out: as Give, but drop-in calls that begin later may take it.
void Lend(uint32_t port, uint64_t deadline);
// The count of lends so far: a drop-in call reads it when it begins.
uint32_t LendClock();
// A reservation's socket holds the port; Unhold gives it when released.
void Hold(uint32_t port);
void Unhold(uint32_t port, uint64_t deadline);
// Whether the port is held by a reservation of this process now.
bool Held(uint32_t port);

}  // namespace ledger
}  // namespace portalloc
