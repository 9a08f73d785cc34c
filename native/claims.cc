#include "claims.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "ledger.h"

namespace portalloc {
namespace claims {
namespace {

// A claim's key: a port, or kBlockKey + a block.
constexpr uint32_t kBlockKey = 1u << 16;

struct Claim {
  int fd;
  uint64_t lastUse;
  uint32_t foreignPorts = 0;  // a block's: its ports other processes claimed alone when it was claimed
  uint64_t lastGiven = 0;     // when one of its ports was last handed out (Touch)
};

// Process-wide by design (see claims.h); every access holds `lock`. Never
// destroyed: the reaper thread may still wait on them while the process exits.
std::mutex& lock = *new std::mutex();
std::condition_variable& wake = *new std::condition_variable();
std::unordered_map<uint32_t, Claim>& table = *new std::unordered_map<uint32_t, Claim>();
bool reaping = false;  // the reaper thread runs (lock held to read or write)
// Open claims of each kind, [0] ports, [1] blocks: each kind has a cap of its own (Take).
uint32_t openCount[2] = {0, 0};
uint32_t& OpenOf(uint32_t key) { return openCount[key >= kBlockKey ? 1 : 0]; }
std::atomic<uint64_t> window{20000};

socklen_t NameOf(uint32_t key, sockaddr_un* address) {
  *address = sockaddr_un();
  address->sun_family = AF_UNIX;
  // sun_path[0] stays '\0': an abstract name, not a file.
  const bool block = key >= kBlockKey;
  const int n = snprintf(address->sun_path + 1, sizeof address->sun_path - 1, "portalloc/v2/%s/%u", block ? "block" : "port",
                         block ? key - kBlockKey : key);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

// A bound, never-read datagram socket named after `key`; -1 with errno set.
int Bind(uint32_t key) {
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un address;
  const socklen_t length = NameOf(key, &address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// Whether some process has bound the name of `key` (tester: an unbound unix
// datagram socket; -1: cannot tell, so not).
bool Bound(uint32_t key, int tester) {
  if (tester < 0) return false;
  sockaddr_un address;
  const socklen_t length = NameOf(key, &address);
  return connect(tester, reinterpret_cast<sockaddr*>(&address), length) == 0;
}

bool HoldsAPort(uint32_t key) {
  if (key < kBlockKey) return ledger::Held(key, 3);
  const uint32_t first = (key - kBlockKey) << kBlockShift;
  for (uint32_t port = first; port < first + (1u << kBlockShift); ++port) {
    if (ledger::Held(port, 3)) return true;
  }
  return false;
}

// Closes claims unused for the window (lock held), except those a held port needs.
void ExpireLocked(uint64_t now) {
  for (auto it = table.begin(); it != table.end();) {
    if (it->second.lastUse + window.load() > now) {
      ++it;
    } else if (HoldsAPort(it->first)) {
      it->second.lastUse = now;  // a reservation still needs it
      ++it;
    } else {
      close(it->second.fd);
      --OpenOf(it->first);
      it = table.erase(it);
    }
  }
}

// The reaper: while any claim is open, closes expired ones every window / 4.
void Reap() {
  std::unique_lock<std::mutex> guard(lock);
  while (!table.empty()) {
    wake.wait_for(guard, std::chrono::milliseconds(std::max<uint64_t>(window.load() / 4, 50)));
    ExpireLocked(ledger::NowMs());
  }
  reaping = false;
}

// A bit per port of `block` whose name another process has bound.
uint32_t ForeignPortsOf(uint32_t block, int tester) {
  uint32_t mask = 0;
  for (uint32_t i = 0; i < (1u << kBlockShift); ++i) {
    const uint32_t port = (block << kBlockShift) + i;
    if (table.count(port) == 0 && Bound(port, tester)) mask |= 1u << i;
  }
  return mask;
}

// A new claim (lock held): starts the reaper if it is not running.
Claim& Add(uint32_t key, int fd) {
  Claim& claim = table.emplace(key, Claim{fd, ledger::NowMs()}).first->second;
  ++OpenOf(key);
  if (!reaping) {
    reaping = true;
    std::thread(Reap).detach();
  }
  return claim;
}

// Claims `key` (lock held): mine, foreign, or unclaimed (at the cap, or for
// want of fds: giving way, after testing that no other process has the name).
Answer Take(uint32_t key, int tester, bool* fresh) {
  *fresh = false;
  auto found = table.find(key);
  if (found != table.end()) {
    found->second.lastUse = ledger::NowMs();
    return kMine;
  }
  // (Ports and blocks apart: a process's many single-port claims, in small ranges or by drop-ins,
  // never leave its batches of the kernel's range without blocks, nor the other way round.)
  if (OpenOf(key) >= Cap()) return Bound(key, tester) ? kForeign : kUnclaimed;
  const int fd = Bind(key);
  if (fd < 0 && errno == EADDRINUSE) return kForeign;
  if (fd < 0) return Bound(key, tester) ? kForeign : kUnclaimed;  // EMFILE, ENFILE, ENOBUFS
  Add(key, fd);
  *fresh = true;
  return kMine;
}

void Forget(uint32_t key) {
  auto found = table.find(key);
  if (found == table.end()) return;
  close(found->second.fd);
  --OpenOf(key);
  table.erase(found);
}

}  // namespace

uint32_t Cap() {
  static const uint32_t cap = [] {
    rlimit limit{};
    const uint64_t files = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? limit.rlim_cur : 1u << 20;
    return static_cast<uint32_t>(std::clamp<uint64_t>(files / 16, 1, 512));
  }();
  return cap;
}

void SetWindow(uint64_t windowMs) { window.store(windowMs); }

Answer Block(uint32_t block, int tester, uint32_t* foreignPorts) {
  std::lock_guard<std::mutex> guard(lock);
  bool fresh;
  const uint32_t key = kBlockKey + block;
  const Answer answer = Take(key, tester, &fresh);
  if (answer == kMine) {
    Claim& claim = table.find(key)->second;
    if (fresh) claim.foreignPorts = ForeignPortsOf(block, tester);  // (after the bind: the Dekker order)
    *foreignPorts = claim.foreignPorts;
  }
  return answer;
}

bool PortClaimed(uint32_t port, int tester) {
  {
    std::lock_guard<std::mutex> guard(lock);
    if (table.count(port) != 0) return false;
  }
  return Bound(port, tester);
}

Answer Port(uint32_t port, int tester, bool* fresh) {
  std::lock_guard<std::mutex> guard(lock);
  const Answer answer = Take(port, tester, fresh);
  if (answer == kForeign) return answer;
  // A foreign block covers it: step back (its owner sees this claim, or this
  // test sees its block; either way one of the two keeps off).
  const uint32_t blockKey = kBlockKey + (port >> kBlockShift);
  if (table.count(blockKey) == 0 && Bound(blockKey, tester)) {
    if (*fresh) Forget(port);
    *fresh = false;
    return kForeign;
  }
  return kMine;
}

void Unport(uint32_t port) {
  std::lock_guard<std::mutex> guard(lock);
  Forget(port);
}

Share ShareOf(uint32_t low, uint32_t high, int tester) {
  Share share;
  std::lock_guard<std::mutex> guard(lock);
  // Each block's name is tested once, not once per port (a connect() each: this runs every call).
  uint32_t blockKey = 0;
  bool blockMine = false, blockForeign = false;
  for (uint32_t port = low; port <= high; ++port) {
    if (kBlockKey + (port >> kBlockShift) != blockKey) {
      blockKey = kBlockKey + (port >> kBlockShift);
      blockMine = table.count(blockKey) != 0;
      blockForeign = !blockMine && Bound(blockKey, tester);
    }
    if (table.count(port) != 0) {
      ++share.mine;
    } else if (!blockMine && (blockForeign || Bound(port, tester))) {
      ++share.foreign;
    }
  }
  return share;
}

void Touch(const std::vector<int>& ports) {
  const uint64_t now = ledger::NowMs();
  std::lock_guard<std::mutex> guard(lock);
  for (int port : ports) {
    for (uint32_t key : {static_cast<uint32_t>(port), kBlockKey + (static_cast<uint32_t>(port) >> kBlockShift)}) {
      auto found = table.find(key);
      if (found != table.end()) found->second.lastUse = found->second.lastGiven = now;
    }
  }
}

std::vector<Owned> OwnedIn(uint32_t low, uint32_t high) {
  std::vector<Owned> owned;
  {
    std::lock_guard<std::mutex> guard(lock);
    for (const auto& [key, claim] : table) {
      if (key >= low && key <= high && claim.lastGiven != 0) owned.push_back(Owned{key, claim.lastGiven});
    }
  }
  std::sort(owned.begin(), owned.end(), [](const Owned& a, const Owned& b) { return a.givenAt < b.givenAt; });
  return owned;
}

void ReleaseAll() {
  std::lock_guard<std::mutex> guard(lock);
  for (auto& entry : table) close(entry.second.fd);
  table.clear();
  openCount[0] = openCount[1] = 0;
}

uint32_t Count() {
  std::lock_guard<std::mutex> guard(lock);
  return static_cast<uint32_t>(table.size());
}

}  // namespace claims
}  // namespace portalloc
