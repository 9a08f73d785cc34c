// Cross-process claims: which ports other processes on this machine (same
// network namespace) have just handed out. Pure C++, no N-API.
//
// A claim is an abstract unix datagram socket, bound and never read, named
//   "\0portalloc/v2/block/<b>"  ports 32b .. 32b+31, or
//   "\0portalloc/v2/port/<p>"   port p alone.
// Binding a name is atomic in the kernel: the one process that binds it owns
// the claim, and the name vanishes with its socket, so nothing outlives the
// process. Another process tests a name with connect() on an unbound datagram
// socket: 0 when it is bound, ECONNREFUSED when not (nothing is sent).
//
// Large batches (the kernel's range, ranges of 512 ports or more) and the
// drop-ins' random ports claim blocks; small ranges and the drop-ins' numbered
// ports claim single ports, so a 101-port range
// shared by many processes is not four blocks. The two kinds exclude each other
// in the Dekker way: a port claimer binds its port name, then tests the block;
// a block owner binds its block, then tests the names of the block's ports.
// Whichever order the kernel sees, at least one of them sees the other. (The
// owner tests once, when it claims the block, and keeps the answer as a mask:
// a port claim made later sees the block and steps back.)
//
// The table is process-wide (claims belong to the process, not to a thread:
// a worker's exit keeps them) and mutex-guarded. At most Cap() port claims and
// Cap() block claims are open at once (apart, so that many single-port claims
// never leave the kernel range's batches without blocks); past that, ports are
// handed out unclaimed (giving way), but every
// name is still tested, so no other process's claim is ever overlooked. Each
// claim closes `windowMs` after its last use, unless a reservation still holds
// one of its ports, closed by a reaper thread of the addon's own that runs
// only while claims are open (so claims made by a worker that has exited expire too).
#pragma once

#include <cstdint>
#include <vector>

namespace portalloc {
namespace claims {

constexpr uint32_t kBlockShift = 5;
constexpr uint32_t kBlocks = 65536 >> kBlockShift;

enum Answer : uint8_t {
  kMine,       // this process owns the claim (just now or before)
  kForeign,    // another process does: skip the port
  kUnclaimed,  // no fd to spare: hand the port out without a claim (giving way)
};

// At most this many claims of each kind (ports, blocks) at once: a sixteenth of RLIMIT_NOFILE, 1 to 512.
uint32_t Cap();

// How long claims live after their last use (CLAIM_MS); each request sets it.
void SetWindow(uint64_t windowMs);

// Claims `block` for this process, or says who has it (tester: an unbound
// unix datagram socket, probe.h). Touches it (its expiry counts from now)
// when it is this process's; *foreignPorts then has a bit for each of its 32
// ports that another process claimed alone when the block was claimed.
Answer Block(uint32_t block, int tester, uint32_t* foreignPorts);
// Whether another process claims `port` alone (for ports handed out unclaimed).
bool PortClaimed(uint32_t port, int tester);
// Claims `port` alone; foreign when another process claims it or its block.
// *fresh: the claim was made by this call (Unport gives such a one back).
Answer Port(uint32_t port, int tester, bool* fresh);
void Unport(uint32_t port);

// In [low, high]: how many ports this process claims alone, and how many
// other processes claim (alone or by block). A batch of a small range keeps
// to its share: at most half of the ports nobody else claims (batch.cc).
struct Share {
  uint32_t mine = 0, foreign = 0;
};
Share ShareOf(uint32_t low, uint32_t high, int tester);

// This process's single-port claims in [low, high] whose port it has handed
// out, the longest ago first (when: NowMs() of the last Touch).
struct Owned {
  uint32_t port;
  uint64_t givenAt;
};
std::vector<Owned> OwnedIn(uint32_t low, uint32_t high);

// These ports are handed out now: their claims' expiry counts from now.
void Touch(const std::vector<int>& ports);
// Closes every claim: fds are short.
void ReleaseAll();
uint32_t Count();

}  // namespace claims
}  // namespace portalloc
