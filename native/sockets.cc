#include "sockets.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace portalloc {

namespace {

// The scope id of an IPv6 zone: an interface name or its index; 0 when none.
uint32_t ScopeId(const char* zone) {
  char* end = nullptr;
  const unsigned long index = std::strtoul(zone, &end, 10);
  if (end != zone && *end == '\0') return static_cast<uint32_t>(index);
  return if_nametoindex(zone);
}

}  // namespace

bool ParseAddress(const char* text, Address* out) {
  *out = Address();
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (std::strlen(text) >= sizeof host) return false;
  std::strcpy(host, text);
  uint32_t scopeId = 0;
  if (char* zone = std::strchr(host, '%')) {
    *zone = '\0';
    scopeId = ScopeId(zone + 1);
    if (scopeId == 0) return false;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (host[0] == '\0' || std::strcmp(host, "::") == 0) {
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    out->length = sizeof(sockaddr_in6);
    return true;
  }
  out->dualStack = false;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (scopeId == 0 && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    out->length = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_scope_id = scopeId;
    out->length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

uint16_t PortOf(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(s).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(s).sin_port);
}

void SetPort(sockaddr_storage* s, uint16_t port) {
  if (s->ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(s)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(s)->sin_port = htons(port);
  }
}

void FallBackToIpv4(Address* address) {
  *address = Address();
  auto* in4 = reinterpret_cast<sockaddr_in*>(&address->storage);
  in4->sin_family = AF_INET;
  in4->sin_addr.s_addr = htonl(INADDR_ANY);
  address->length = sizeof(sockaddr_in);
  address->dualStack = false;
}

int OpenSocket(Address* address, int type) {
  int fd = socket(address->family(), type | SOCK_CLOEXEC, 0);
  if (fd < 0 && errno == EAFNOSUPPORT && address->dualStack) {
    FallBackToIpv4(address);
    fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return -1;
  const int off = 0;
  if (address->dualStack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
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

int CheckFree(const Address& address, int protocol, uint32_t port, const char** syscall) {
  Address local = address;
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    if (!(protocol & (type == SOCK_STREAM ? kTcp : kUdp))) continue;
    const int fd = OpenSocket(&local, type);
    if (fd < 0) {
      *syscall = "socket";
      return errno;
    }
    const int error = BindPort(fd, local, static_cast<uint16_t>(port)) == 0 ? 0 : errno;
    close(fd);
    if (error != 0) {
      *syscall = "bind";
      return error;
    }
  }
  return 0;
}

int ShareAll(const std::vector<int>& fds) {
  const int on = 1;
  for (int fd : fds) {
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return errno;
  }
  return 0;
}

int UsableCpus() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
  return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
}

// On Linux, the fourth field of /proc/loadavg counts the threads runnable now
// (this one included): with one per CPU or more, a second thread only queues
// behind them (measured: a two-thread batch on a busy 2-CPU machine ran 1.3x
// slower than one thread, on an idle one 1.7x faster).
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

namespace {

constexpr size_t kCloseSplitMin = 2048;

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
    for (size_t i = from; i < std::min(size, from + 64); ++i) close((*w->fds)[i]);
  }
}

}  // namespace

void CloseAll(std::vector<int>* fds) {
  CloseWork work;
  work.fds = fds;
  pthread_t helper;
  const bool two = fds->size() >= kCloseSplitMin && SecondCpuFree() && pthread_create(&helper, nullptr, CloseShare, &work) == 0;
  CloseShare(&work);
  if (two) pthread_join(helper, nullptr);
  fds->clear();
}

}  // namespace portalloc
