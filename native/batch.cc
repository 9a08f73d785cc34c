#include "batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "probe.h"

namespace portalloc {

bool ParseAddress(const char* host, Address* out) {
  *out = Address();
  if (host[0] == '\0' || std::strcmp(host, "::") == 0) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    out->length = sizeof(sockaddr_in6);
    out->dualStack = true;
    return true;
  }
  out->dualStack = false;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    out->length = sizeof(sockaddr_in);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    out->length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

namespace {

// Below this many ports a second thread costs more than it saves.
constexpr uint32_t kSplitMin = 2048;

int UsableCpus() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
  return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

// fds closed by whichever thread takes them next, 64 at a time.
struct CloseWork {
  const std::vector<int>* fds;
  std::atomic<size_t> next{0};
};

void* CloseShare(void* work) {
  auto* w = static_cast<CloseWork*>(work);
  const size_t size = w->fds->size();
  for (;;) {
    const size_t from = w->next.fetch_add(64, std::memory_order_relaxed);
    if (from >= size) return nullptr;
    const size_t to = std::min(size, from + 64);
    for (size_t i = from; i < to; ++i) close((*w->fds)[i]);
  }
}

// Whether a second thread would find a CPU now. On Linux, the fourth field
// of /proc/loadavg counts the threads runnable at this moment (this one
// included): with one per CPU or more, a second thread only queues behind
// them (measured: a two-thread batch on a busy 2-CPU machine ran 1.3x slower
// than one thread, on an idle one 1.7x faster). Elsewhere: two CPUs suffice.
bool SecondCpuFree() {
  const int cpus = UsableCpus();
  if (cpus < 2) return false;
#ifdef __linux__
  FILE* file = std::fopen("/proc/loadavg", "re");
  if (file == nullptr) return true;
  double a = 0, b = 0, c = 0;
  int running = 0, total = 0;
  const int fields = std::fscanf(file, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total);
  std::fclose(file);
  if (fields == 5) return running < cpus;
#endif
  return true;
}

}  // namespace

// A close() of a bound TCP socket costs the kernel ~4 us: many are closed on
// two threads where two CPUs are usable.
void CloseAll(std::vector<int>* fds) {
  CloseWork work;
  work.fds = fds;
  pthread_t helper;
  const bool shared = fds->size() >= kSplitMin && SecondCpuFree() && pthread_create(&helper, nullptr, CloseShare, &work) == 0;
  CloseShare(&work);
  if (shared) pthread_join(helper, nullptr);
  fds->clear();
}

int ShareAll(const std::vector<int>& fds) {
  const int on = 1;
  for (int fd : fds) {
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return errno;
  }
  return 0;
}

void SetPort(sockaddr_storage* s, uint16_t port) {
  if (s->ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(s)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(s)->sin_port = htons(port);
  }
}

uint16_t PortOf(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(s).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(s).sin_port);
}

void FallBackToIpv4(Address* address) {
  *address = Address();
  auto* in4 = reinterpret_cast<sockaddr_in*>(&address->storage);
  in4->sin_family = AF_INET;
  in4->sin_addr.s_addr = htonl(INADDR_ANY);
  address->length = sizeof(sockaddr_in);
  address->dualStack = false;
}

namespace {

// socket() with close-on-exec; IPV6_V6ONLY=0 for the dual-stack default.
int OpenSocket(Address* address, int type) {
  int fd = socket(address->family(), type | SOCK_CLOEXEC, 0);
  if (fd < 0 && errno == EAFNOSUPPORT && address->dualStack) {
    FallBackToIpv4(address);
    fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return -1;
  if (address->dualStack) {
    const int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
  }
  return fd;
}

int BindPort(int fd, const Address& address, uint16_t port) {
  sockaddr_storage s = address.storage;
  SetPort(&s, port);
  return bind(fd, reinterpret_cast<sockaddr*>(&s), address.length);
}

int BoundPort(int fd) {
  sockaddr_storage s;
  socklen_t length = sizeof s;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&s), &length) != 0) return -1;
  return PortOf(s);
}

bool IsBusy(int error) { return error == EADDRINUSE || error == EACCES; }

// A port of [low, high] at random, of the parity bind(0) hands out first
// (the one opposite to low's; connect() takes the other).
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

// Whether a batch checks its ports with the probe (probe.h): allocate of TCP
// ports, unless PORTALLOC_PROBE=0 (read on the JavaScript thread: probeOff).
bool Probing(const BatchRequest& request) {
  return !request.hold && request.protocol == kTcp && !request.probeOff;
}

// The ports of this process's batches, process-wide (the kernel's ports are):
// - inFlight: a bit per port that a probing batch is checking now, taken
//   before it checks, so two batches never check (and return) one port;
// - pinnedAt: for each port an allocate returned, when its batch ended
//   (kPinned until then). A batch that began before that keeps off the port:
//   bound sockets held until a batch was complete gave this promise, the
//   kernel refusing them to the batches running meanwhile. A batch that
//   begins later may have it (coordination remembers it in JavaScript).
uint8_t inFlight[65536 / 8];
uint64_t pinnedAt[65536];
std::atomic<uint64_t> batchClock{0};
constexpr uint64_t kPinned = UINT64_MAX;

bool InFlightNow(uint32_t port) {
  return (__atomic_load_n(&inFlight[port >> 3], __ATOMIC_ACQUIRE) >> (port & 7)) & 1;
}

// Returned by a batch that ended after `ticket` began (or has not ended yet).
bool PinnedSince(uint32_t port, uint64_t ticket) {
  return __atomic_load_n(&pinnedAt[port], __ATOMIC_ACQUIRE) > ticket;
}

// Pins the ports a batch returns until EndBatch dates them; *before keeps
// what they were, for a split batch that gives them up after all.
void Pin(const std::vector<int>& ports, std::vector<uint64_t>* before) {
  before->resize(ports.size());
  for (size_t i = 0; i < ports.size(); ++i) (*before)[i] = __atomic_exchange_n(&pinnedAt[ports[i]], kPinned, __ATOMIC_ACQ_REL);
}

void Unpin(const std::vector<int>& ports, const std::vector<uint64_t>& before) {
  for (size_t i = 0; i < ports.size() && i < before.size(); ++i) __atomic_store_n(&pinnedAt[ports[i]], before[i], __ATOMIC_RELEASE);
}

// The inFlight bits one batch took, given back when it ends (by then the
// ports it returns are pinned).
class InFlight {
 public:
  InFlight() = default;
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() {
    for (uint16_t port : taken_) Give(port);
  }
  // False when another batch (or this one) has the port already.
  bool Take(uint32_t port) {
    const uint8_t bit = static_cast<uint8_t>(1u << (port & 7));
    if (__atomic_fetch_or(&inFlight[port >> 3], bit, __ATOMIC_ACQ_REL) & bit) return false;
    taken_.push_back(static_cast<uint16_t>(port));
    return true;
  }
  // Gives the port just taken back (not wanted after all).
  void Release(uint32_t port) {
    if (!taken_.empty() && taken_.back() == port) {
      taken_.pop_back();
      Give(port);
    }
  }

 private:
  static void Give(uint32_t port) {
    __atomic_fetch_and(&inFlight[port >> 3], static_cast<uint8_t>(~(1u << (port & 7))), __ATOMIC_ACQ_REL);
  }
  std::vector<uint16_t> taken_;
};

// The port half of [low, high] away from `start`, of start's parity.
uint32_t Across(uint32_t start, uint32_t low, uint32_t high) {
  const uint32_t size = high - low + 1;
  uint32_t port = low + (start - low + size / 2) % size;
  if ((port ^ start) & 1) port = port + 1 <= high ? port + 1 : port - 1;
  return port;
}

// The sockets of one batch. Whatever it still owns when destroyed is closed,
// so every early return on a failure leaks nothing.
class Batch {
 public:
  explicit Batch(const BatchRequest& request)
      : request_(request),
        address_(request.address),
        claims_(request.coordination),
        held_(request.heldBitmap),
        ticket_(request.ticket != 0 ? request.ticket : batchClock.load(std::memory_order_acquire)) {}
  ~Batch() {
    CloseAll(&primary_);
    CloseAll(&udp_);
    CloseAll(&rejects_);
    if (spare_ >= 0) close(spare_);
    if (spareUdp_ >= 0) close(spareUdp_);
  }

  BatchResult Run();

 private:
  bool Excluded(uint32_t port) const {
    const auto& bitmap = request_.exclude;
    return !bitmap.empty() && ((bitmap[port >> 3] >> (port & 7)) & 1);
  }
  // Not in a block that another process claims (when coordinating).
  bool Admitted(uint32_t port) { return !request_.coordination.enabled || claims_.Admit(port); }
  // A split batch: whether the halves still need ports; tell the other to stop.
  bool Wanted() const {
    return request_.quota != nullptr ? request_.quota->load(std::memory_order_relaxed) > 0
                                     : result_.ports.size() < request_.count;
  }
  void Stop() {
    if (request_.quota != nullptr) request_.quota->store(0, std::memory_order_relaxed);
  }
  // Ports this batch (or the other half of a split batch) holds already: a
  // scan passes them without a bind that could only fail. Relaxed atomics: a
  // stale bit costs one failed bind, never a repeated port (the kernel
  // refuses those).
  // A batch of its own starts the bitmap when it starts to scan (most never do).
  bool Held(uint32_t port) const {
    return held_ != nullptr && ((__atomic_load_n(&held_[port >> 3], __ATOMIC_RELAXED) >> (port & 7)) & 1);
  }
  void MarkHeld(uint32_t port) {
    if (held_ != nullptr) __atomic_fetch_or(&held_[port >> 3], static_cast<uint8_t>(1u << (port & 7)), __ATOMIC_RELAXED);
  }
  // Whether another batch of this process is checking the port now, or
  // returned it and ended after this one began (see pinnedAt).
  bool Blocked(uint32_t port) const { return InFlightNow(port) || PinnedSince(port, ticket_); }
  bool BlockedSinceCheck(uint32_t port) const { return probe_ == nullptr ? Blocked(port) : PinnedSince(port, ticket_); }
  // The next port of the scan not excluded, held, claimed by another process
  // or blocked by another batch of this process; false when the scan has
  // passed every port. A probing batch takes the port's inFlight bit.
  bool NextCandidate(uint32_t* port) {
    for (;;) {
      if (remaining_ == 0 && step_ == 2) StartScan(request_.ephemeralLow, request_.ephemeralHigh, next_);
      if (remaining_ == 0) return false;
      const uint32_t candidate = next_;
      next_ = next_ + step_ > high_ ? low_ : next_ + step_;
      --remaining_;
      if (Excluded(candidate) || Held(candidate) || Blocked(candidate)) continue;
      // (A pin set after this check shows after the probe: see Run.)
      if (probe_ != nullptr && !inFlight_.Take(candidate)) continue;
      if (!Admitted(candidate)) {
        if (probe_ != nullptr) inFlight_.Release(candidate);
        continue;
      }
      *port = candidate;
      return true;
    }
  }
  // With the probe: 0 when `port` was free, busy (EADDRINUSE), or
  // Probe::kCannot: check it with a socket of its own.
  int Probed(uint32_t port) {
    return probe_->Check(address_, static_cast<uint16_t>(port), request_.ephemeralLow, request_.ephemeralHigh);
  }
  // Counts a port found against a split batch's shared quota: false when the
  // other half found the last port first.
  bool Count() { return request_.quota == nullptr || request_.quota->fetch_sub(1, std::memory_order_relaxed) > 0; }
  // An unbound socket: the one a failed bind left, or a new one.
  int Take(int* spare, int type) {
    int fd = *spare;
    *spare = -1;
    return fd >= 0 ? fd : OpenSocket(&address_, type);
  }
  void StartScan(uint32_t low, uint32_t high, uint32_t start) {
    if (held_ == nullptr) {
      ownHeld_.assign(65536 / 8, 0);
      held_ = ownHeld_.data();
      for (int port : result_.ports) MarkHeld(static_cast<uint32_t>(port));
    }
    kernel_ = false;
    low_ = low;
    high_ = high;
    next_ = start < low || start > high ? low : start;
    remaining_ = high - low + 1;
    step_ = 1;
  }
  // A coordinated batch scans on from its first bind(0) port, so its ports fill
  // few blocks (claims.h): the ports of that port's parity first (for TCP the
  // half bind(0) prefers, leaving the other to connect(); UDP follows suit, so
  // its ports are rarely TCP clients' too), then the whole range.
  void StartParityScan(uint32_t start) {
    const uint32_t low = request_.ephemeralLow, high = request_.ephemeralHigh;
    kernel_ = false;
    step_ = 2;
    low_ = low + ((start ^ low) & 1);
    high_ = high - ((start ^ high) & 1);
    if (low_ > high_) return StartScan(low, high, start);
    next_ = start < low_ || start > high_ ? low_ : start;
    remaining_ = (high_ - low_) / 2 + 1;
  }
  BatchResult& Fail(int error, const char* syscall, uint32_t port) {
    Stop();
    result_.error = error;
    result_.syscall = syscall;
    result_.errorPort = port;
    result_.ports.clear();
    return result_;
  }
  BatchResult& Exhausted() {
    Stop();
    result_.exhausted = true;
    return result_;  // ports found so far stay in result_ to report the count
  }

  const BatchRequest& request_;
  Address address_;
  BatchResult result_;
  std::vector<int> primary_;  // one bound socket per port found
  std::vector<int> udp_;      // kBoth: the UDP socket per port found
  std::vector<int> rejects_;  // bound to ports not taken, held until the end
  Claims claims_;  // closed by its destructor unless taken on success
  Probe ownProbe_;  // closed by its destructor; unused when the request brings one
  Probe* probe_ = nullptr;  // allocate only: checks ports without holding them
  InFlight inFlight_;       // (probing) the ports this batch took; given back when it ends
  int spare_ = -1;
  int spareUdp_ = -1;
  uint8_t* held_;
  std::vector<uint8_t> ownHeld_;
  bool kernel_ = true;
  uint32_t low_ = 0, high_ = 0, next_ = 0, remaining_ = 0, step_ = 1;
  const uint64_t ticket_;  // when it began (BeginBatch); 0 in the request: now
};

BatchResult Batch::Run() {
  const uint32_t count = request_.count;
  const int type = request_.protocol == kUdp ? SOCK_DGRAM : SOCK_STREAM;
  const bool both = request_.protocol == kBoth;
  result_.ports.reserve(count);
  if (Probing(request_)) probe_ = request_.probe != nullptr ? request_.probe : count > 1 ? &ownProbe_ : nullptr;
  if (probe_ == nullptr) primary_.reserve(count);
  if (both && probe_ == nullptr) udp_.reserve(count);
  const uint32_t low = request_.ephemeralLow, high = request_.ephemeralHigh;
  if (request_.rangeFrom != 0) StartScan(request_.rangeFrom, request_.rangeTo, request_.start);
  const uint32_t continueAt = request_.coordination.enabled ? request_.coordination.continueAt : 0;
  if (request_.rangeFrom == 0 && continueAt >= low && continueAt <= high) {
    StartParityScan(request_.scanStart != 0 ? request_.scanStart : continueAt);  // (a split batch's second half starts apart)
  } else if (request_.rangeFrom == 0 && probe_ != nullptr) {
    // The probe picks ports as bind(0) would: at random, of bind(0)'s parity first.
    StartParityScan(request_.scanStart != 0 ? request_.scanStart : RandomPreferredPort(low, high));
  }
  uint32_t kernelPorts = 0;

  while (Wanted()) {
    uint32_t candidate = 0;
    if (!kernel_) {
      if (!NextCandidate(&candidate)) return Exhausted();
      if (probe_ != nullptr) {
        const int state = Probed(candidate);
        // Free, but another batch may have found it, pinned it and let it
        // go since this one checked the pin (a batch pins before it gives
        // back its bits or closes its sockets).
        if (state == 0 && PinnedSince(candidate, ticket_)) continue;
        if (state == 0) {
          if (!Count()) break;
          result_.ports.push_back(static_cast<int>(candidate));
          MarkHeld(candidate);
          continue;
        }
        if (state != Probe::kCannot) continue;  // busy
      }
    }
    int fd = Take(&spare_, type);
    if (fd < 0) return Fail(errno, "socket", 0);
    int port;
    if (kernel_) {
      if (BindPort(fd, address_, 0) != 0) {
        int error = errno;
        spare_ = fd;
        if (error == EADDRINUSE) return Exhausted();
        return Fail(error, "bind", 0);
      }
      port = BoundPort(fd);
      if (port < 0) {
        int error = errno;
        close(fd);
        return Fail(error, "getsockname", 0);
      }
      // bind(0) hands out ports of the parity opposite to ip_local_port_range's
      // low end first. Once it returns the other parity, or the batch holds
      // many ports, each further bind(0) scans the range: scan it once instead.
      const bool otherHalf = (static_cast<uint32_t>(port) & 1) == (low & 1);
      if (type == SOCK_STREAM && (otherHalf || ++kernelPorts >= request_.kernelBudget)) {
        const uint32_t from = request_.scanStart != 0 ? request_.scanStart : static_cast<uint32_t>(port) + 1;
        StartScan(low, high, from);
      } else if (request_.coordination.enabled) {
        StartParityScan(request_.scanStart != 0 ? request_.scanStart : static_cast<uint32_t>(port) + 2);
      }
      if (Excluded(static_cast<uint32_t>(port)) || Blocked(static_cast<uint32_t>(port)) ||
          !Admitted(static_cast<uint32_t>(port))) {
        rejects_.push_back(fd);  // held, so the kernel does not offer it again
        continue;
      }
    } else {
      port = static_cast<int>(candidate);
      if (BindPort(fd, address_, static_cast<uint16_t>(port)) != 0) {
        int error = errno;
        spare_ = fd;  // still unbound: try the next port with it
        if (IsBusy(error)) continue;
        return Fail(error, "bind", static_cast<uint32_t>(port));
      }
    }
    // Checked before the bind, but another batch may have found it since and
    // let it go (a probe at once, a batch of sockets when it ended): its bit
    // (not ours to read when probing: this batch holds it) or its pin says so.
    if (BlockedSinceCheck(static_cast<uint32_t>(port))) {
      rejects_.push_back(fd);
      continue;
    }
    if (both) {
      int udp = Take(&spareUdp_, SOCK_DGRAM);
      if (udp < 0) {
        int error = errno;
        close(fd);
        return Fail(error, "socket", 0);
      }
      if (BindPort(udp, address_, static_cast<uint16_t>(port)) != 0) {
        int error = errno;
        spareUdp_ = udp;
        rejects_.push_back(fd);
        if (IsBusy(error)) continue;
        return Fail(error, "bind", static_cast<uint32_t>(port));
      }
      if (BlockedSinceCheck(static_cast<uint32_t>(port))) {  // (a UDP allocate may have let it go meanwhile)
        rejects_.push_back(fd);
        rejects_.push_back(udp);
        continue;
      }
      udp_.push_back(udp);
    }
    if (!Count()) {
      rejects_.push_back(fd);  // the other half found the last port first
      break;
    }
    primary_.push_back(fd);
    result_.ports.push_back(static_cast<int>(port));
    MarkHeld(static_cast<uint32_t>(port));
  }
  // allocate: the ports stay off-limits to the batches running meanwhile,
  // before the sockets close (batch.h, EndBatch).
  if (!request_.hold) {
    Pin(result_.ports, &result_.pinnedBefore);
    result_.pinned = true;
  }

  if (request_.hold) {
    if (request_.shared) {
      int error = ShareAll(primary_);
      if (error == 0) error = ShareAll(udp_);
      if (error != 0) return Fail(error, "setsockopt", 0);
    }
    result_.fds.reserve(primary_.size() + udp_.size());
    result_.fds.insert(result_.fds.end(), primary_.begin(), primary_.end());
    result_.fds.insert(result_.fds.end(), udp_.begin(), udp_.end());
    primary_.clear();
    udp_.clear();
  }
  claims_.Take(&result_.claimBlocks, &result_.claimFds);
  return std::move(result_);
}

BatchResult RunWhole(const BatchRequest& request) {
  Batch batch(request);
  return batch.Run();  // (a failure returns no fds: they stay in the batch, closed with it)
}

struct Half {
  BatchRequest request;
  BatchResult result;
};

void* RunHalf(void* half) {
  auto* h = static_cast<Half*>(half);
  h->result = RunWhole(h->request);
  return nullptr;
}

// A large batch of kernel-chosen ports shared by this thread and one more:
// a port costs the kernel ~4 us with the probe (allocate), ~8 us with a socket
// of its own (reserve), and two CPUs do two at once. The halves share a quota,
// so a thread that gets less CPU finds fewer ports and the batch is never held
// up by it. Holding halves stay held until both are complete, so no port
// repeats across them; probing halves take each port in flight (InFlight)
// before they check it. For allocate every socket is closed before the batch
// returns, so every port is free when returned. False, with everything closed, when a
// half failed or came up short: the caller then runs the batch whole, which
// finds the ports or reports the failure exactly as a one-thread batch does.
bool SplitBatch(const BatchRequest& request, BatchResult* out) {
  if (request.threads == 1 || request.count < kSplitMin || request.rangeFrom != 0 || request.protocol == kBoth) {
    return false;
  }
  if (request.threads == 2 ? UsableCpus() < 2 : !SecondCpuFree()) return false;
  Half first{request, {}};
  Half second{request, {}};
  std::atomic<int64_t> quota{static_cast<int64_t>(request.count)};
  for (Half* half : {&first, &second}) {
    half->request.quota = &quota;
    // Probing halves take each port in flight before they check it (InFlight);
    // without the probe, bind(0) could hand one half a port the other has let go.
    half->request.hold = !Probing(request);
    half->request.threads = 1;  // (a half runs whole)
    half->request.kernelBudget = std::max<uint32_t>(1, request.kernelBudget / 2);
  }
  // Once bind(0) is left, the halves scan the ephemeral range from points
  // half a range apart rather than chase each other, and skip what either holds.
  std::vector<uint8_t> held(65536 / 8, 0);
  first.request.heldBitmap = second.request.heldBitmap = held.data();
  // Probing halves (allocate) start at once from a point of bind(0)'s parity
  // (the process's next port, when coordinating) and its opposite.
  const uint32_t low = request.ephemeralLow, high = request.ephemeralHigh;
  const uint32_t continueAt = request.coordination.enabled ? request.coordination.continueAt : 0;
  const uint32_t start = continueAt >= low && continueAt <= high ? continueAt : !first.request.hold ? RandomPreferredPort(low, high) : 0;
  if (start != 0) {
    first.request.scanStart = start;
    second.request.scanStart = Across(start, low, high);
  } else {
    second.request.scanStart = low + (high - low + 1) / 2;
  }
  second.request.probe = nullptr;  // (the request's probe belongs to this thread)

  pthread_t helper;
  if (pthread_create(&helper, nullptr, RunHalf, &second) != 0) return false;
  RunHalf(&first);
  pthread_join(helper, nullptr);
  BatchResult& mine = first.result;
  BatchResult& theirs = second.result;
  if (mine.error != 0 || mine.exhausted || theirs.error != 0 || theirs.exhausted ||
      mine.ports.size() + theirs.ports.size() != request.count) {
    CloseAll(&mine.fds);
    CloseAll(&theirs.fds);
    CloseAll(&mine.claimFds);
    CloseAll(&theirs.claimFds);
    if (mine.pinned) Unpin(mine.ports, mine.pinnedBefore);
    if (theirs.pinned) Unpin(theirs.ports, theirs.pinnedBefore);
    return false;
  }
  *out = BatchResult();
  out->ports = std::move(mine.ports);
  out->ports.insert(out->ports.end(), theirs.ports.begin(), theirs.ports.end());
  out->fds = std::move(mine.fds);
  out->fds.insert(out->fds.end(), theirs.fds.begin(), theirs.fds.end());
  // Each half claimed its own blocks (a block one half claimed is foreign to the other).
  out->claimBlocks = std::move(mine.claimBlocks);
  out->claimBlocks.insert(out->claimBlocks.end(), theirs.claimBlocks.begin(), theirs.claimBlocks.end());
  out->claimFds = std::move(mine.claimFds);
  out->claimFds.insert(out->claimFds.end(), theirs.claimFds.begin(), theirs.claimFds.end());
  out->pinned = mine.pinned;  // (probing halves pinned their ports; both do or neither)
  if (!request.hold) {
    if (!out->pinned) Pin(out->ports, &out->pinnedBefore);  // before the sockets close
    out->pinned = true;
    CloseAll(&out->fds);  // on two threads too
  }
  return true;
}

}  // namespace

bool PortBlocked(uint32_t port, uint64_t ticket) {
  // (0: a caller that took no ticket, as if it began now)
  return InFlightNow(port) || PinnedSince(port, ticket != 0 ? ticket : batchClock.load(std::memory_order_acquire));
}

uint64_t BeginBatch() { return batchClock.fetch_add(1, std::memory_order_acq_rel) + 1; }

void EndBatch(const BatchResult& result) {
  if (!result.pinned || result.error != 0 || result.exhausted) return;
  // Dated now: batches that began before keep off these ports, later ones need not.
  const uint64_t ended = batchClock.fetch_add(1, std::memory_order_acq_rel) + 1;
  for (int port : result.ports) __atomic_store_n(&pinnedAt[port], ended, __ATOMIC_RELEASE);
}

BatchResult RunBatch(const BatchRequest& request) {
  BatchResult result;
  if (SplitBatch(request, &result)) return result;
  return RunWhole(request);
}

int CheckFree(const Address& address, int protocol, uint32_t port, const char** syscall) {
  Address local = address;
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    if (type == SOCK_STREAM && !(protocol & kTcp)) continue;
    if (type == SOCK_DGRAM && !(protocol & kUdp)) continue;
    int fd = OpenSocket(&local, type);
    if (fd < 0) {
      *syscall = "socket";
      return errno;
    }
    int error = BindPort(fd, local, static_cast<uint16_t>(port)) == 0 ? 0 : errno;
    close(fd);
    if (error != 0) {
      *syscall = "bind";
      return error;
    }
  }
  return 0;
}

}  // namespace portalloc
