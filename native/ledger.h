// The ledger: who has each port in this process. The one owner of that fact.
//
// One 64-bit stamp per port and protocol (TCP and UDP port spaces are separate,
// as in the kernel), process-wide because ports are: every thread and
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
//                  portfinder, detect-port), whose own checks on the same
//                  thread ignore it, so that they answer as the originals do
//
// THE RULE every path follows (docs/internals.md): acquire a port here before
// checking or binding it; give it, hold it, or drop it back when done. No path
// checks or binds a port it has not acquired, so two callers in this process
// never get the same port, and a port given stays out of every path for the
// claim window, held ports until released.
#pragma once

#include <cstdint>
#include <vector>

namespace portalloc {
namespace ledger {

// Milliseconds of CLOCK_MONOTONIC (shared by every thread of the process).
uint64_t NowMs();

// Which stamps an Acquire may take over, besides free ones.
enum Pass : int {
  kStrict = 0,  // only free ports
  kReuse = 1,   // also ports given (or lent) before the caller began: a range this process used up
  kCompat = 2,  // also lent ports: a drop-in's check, answering as its original
  kRecycle = 3, // only ports given or lent before (not free ones): a process over its share (claims.h)
  kRecycleBound = 4,  // as kRecycle, and only ports a check found bound since (their taker has closed them)
};

// Every call names the protocols (sockets.h: kTcp, kUdp, or kBoth for both
// stamps at once); Prior keeps what an Acquire replaced, per protocol.
struct Prior {
  uint64_t tcp = 0, udp = 0;
};

// Takes `port` for the caller if `pass` allows; *prior keeps the stamps it
// replaced (for Drop). False when another caller has it. Callers in flight at
// the same time never share a port: a pass other than kStrict takes only a
// port handed out before the caller began, `since` being the Clock() value
// read when the call was made (on the JavaScript thread, for async calls too):
// - kReuse: a port given or lent before (a range this process used up);
// - kCompat: a port lent before by a drop-in of the same thread, `lender` (a
//   drop-in call that begins after another has delivered answers as the
//   original, whose memory is its module's, would; another thread's caller
//   never gets it).
// `now`: NowMs() as the caller read it (a batch reads the clock once).
bool Acquire(uint32_t port, int protocol, Pass pass, Prior* prior, uint32_t since, uint64_t now, uint32_t lender = 0);
// Puts back the stamps an Acquire replaced: the port was not wanted after all.
void Drop(uint32_t port, int protocol, const Prior& prior);
// The check found the port bound: a given or lent port's stamp, once Dropped
// back, says so (its taker has had it; kRecycleBound may take it once free).
void SeenBound(Prior* prior);

// The handoff clock: it ticks once per batch delivered, per lend, per release.
uint32_t Clock();
// The port is handed out: out of every path until `deadline` (NowMs-based),
// and not reusable by anyone until Delivered (a batch on a pool thread
// settles before JavaScript has its result: callers that begin meanwhile are
// still "at the same time").
void Give(uint32_t port, int protocol, uint64_t deadline);
// The batch's result reached JavaScript: callers that begin from now on may
// reuse these ports when their range runs short. On the JavaScript thread.
void Delivered(const std::vector<int>& ports, int protocol);
// A drop-in hands a TCP port out: as Give (with a tick of its own), but marked lent.
void Lend(uint32_t port, uint64_t deadline, uint32_t lender);
// A reservation's socket holds the port; Unhold gives it when released.
void Hold(uint32_t port, int protocol);
void Unhold(uint32_t port, int protocol, uint64_t deadline);
// Whether a reservation of this process holds the port for this protocol (kBoth: for either).
bool Held(uint32_t port, int protocol);

// The ports of [low, high], the one handed out longest ago first (by the
// handoff clock: one order for every thread of the process; ports never handed
// out come first, ports not delivered yet last). The reuse pass of a range
// goes in this order, so it hands out again what this process's callers have
// had longest, whichever thread gave it.
std::vector<uint32_t> OldestFirst(uint32_t low, uint32_t high, int protocol);

// A hint, not a stamp: a strict pass over the kernel's whole range found too
// few ports (this process handed most of them out within the window). For a
// short while after, batches of that protocol go straight to the reuse pass
// (which takes free ports too, oldest first from where the last batch
// stopped) instead of scanning ~28,000 stamps every call.
void NoteUsedUp(int protocol);
bool UsedUpRecently(int protocol, uint64_t windowMs);

}  // namespace ledger
}  // namespace portalloc
