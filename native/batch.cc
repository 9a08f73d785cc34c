#include "batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

#include <cstring>

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

void CloseAll(std::vector<int>* fds) {
  for (int fd : *fds) close(fd);
  fds->clear();
}

int ShareAll(const std::vector<int>& fds) {
  const int on = 1;
  for (int fd : fds) {
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return errno;
  }
  return 0;
}

namespace {

void SetPort(sockaddr_storage* s, uint16_t port) {
  if (s->ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(s)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(s)->sin_port = htons(port);
  }
}

// A default address falls back to IPv4 where the process has no IPv6.
void FallBackToIpv4(Address* address) {
  *address = Address();
  auto* in4 = reinterpret_cast<sockaddr_in*>(&address->storage);
  in4->sin_family = AF_INET;
  in4->sin_addr.s_addr = htonl(INADDR_ANY);
  address->length = sizeof(sockaddr_in);
  address->dualStack = false;
}

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
  if (s.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&s)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&s)->sin_port);
}

bool IsBusy(int error) { return error == EADDRINUSE || error == EACCES; }

// The sockets of one batch. Whatever it still owns when destroyed is closed,
// so every early return on a failure leaks nothing.
class Batch {
 public:
  explicit Batch(const BatchRequest& request)
      : request_(request), address_(request.address), claims_(request.coordination) {}
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
  // An unbound socket: the one a failed bind left, or a new one.
  int Take(int* spare, int type) {
    int fd = *spare;
    *spare = -1;
    return fd >= 0 ? fd : OpenSocket(&address_, type);
  }
  void StartScan(uint32_t low, uint32_t high, uint32_t start) {
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
    result_.error = error;
    result_.syscall = syscall;
    result_.errorPort = port;
    result_.ports.clear();
    return result_;
  }
  BatchResult& Exhausted() {
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
  int spare_ = -1;
  int spareUdp_ = -1;
  bool kernel_ = true;
  uint32_t low_ = 0, high_ = 0, next_ = 0, remaining_ = 0, step_ = 1;
};

BatchResult Batch::Run() {
  const uint32_t count = request_.count;
  const int type = request_.protocol == kUdp ? SOCK_DGRAM : SOCK_STREAM;
  const bool both = request_.protocol == kBoth;
  result_.ports.reserve(count);
  primary_.reserve(count);
  if (both) udp_.reserve(count);
  if (request_.rangeFrom != 0) StartScan(request_.rangeFrom, request_.rangeTo, request_.start);
  const uint32_t continueAt = request_.coordination.enabled ? request_.coordination.continueAt : 0;
  if (request_.rangeFrom == 0 && continueAt >= request_.ephemeralLow && continueAt <= request_.ephemeralHigh) {
    StartParityScan(continueAt);
  }
  uint32_t kernelPorts = 0;

  while (result_.ports.size() < count) {
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
      const bool otherHalf = (static_cast<uint32_t>(port) & 1) == (request_.ephemeralLow & 1);
      if (type == SOCK_STREAM && (otherHalf || ++kernelPorts >= request_.kernelBudget)) {
        StartScan(request_.ephemeralLow, request_.ephemeralHigh, static_cast<uint32_t>(port) + 1);
      } else if (request_.coordination.enabled) {
        StartParityScan(static_cast<uint32_t>(port) + 2);
      }
      if (Excluded(static_cast<uint32_t>(port)) || !Admitted(static_cast<uint32_t>(port))) {
        rejects_.push_back(fd);  // held, so the kernel does not offer it again
        continue;
      }
    } else {
      if (remaining_ == 0 && step_ == 2) StartScan(request_.ephemeralLow, request_.ephemeralHigh, next_);
      if (remaining_ == 0) {
        spare_ = fd;
        return Exhausted();
      }
      port = static_cast<int>(next_);
      next_ = next_ + step_ > high_ ? low_ : next_ + step_;
      --remaining_;
      if (Excluded(static_cast<uint32_t>(port)) || !Admitted(static_cast<uint32_t>(port))) {
        spare_ = fd;
        continue;
      }
      if (BindPort(fd, address_, static_cast<uint16_t>(port)) != 0) {
        int error = errno;
        spare_ = fd;  // still unbound: try the next port with it
        if (IsBusy(error)) continue;
        return Fail(error, "bind", static_cast<uint32_t>(port));
      }
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
      udp_.push_back(udp);
    }
    primary_.push_back(fd);
    result_.ports.push_back(static_cast<int>(port));
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

}  // namespace

BatchResult RunBatch(const BatchRequest& request) {
  Batch batch(request);
  BatchResult result = batch.Run();
  if (result.exhausted || result.error != 0) {
    // Nothing stays held after a failure; the count found is kept for the message.
    result.fds.clear();
  }
  return result;
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
