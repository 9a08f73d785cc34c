#include "probe.h"

#include <errno.h>
#include <linux/filter.h>
#include <unistd.h>

namespace portalloc {

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51  // linux/in.h, Linux 6.3
#endif

void Probe::Close() {
  for (auto& row : fds_) {
    for (int& fd : row) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
  }
}

int& Probe::Slot(const Address& address, int type) {
  const int kind = address.family() == AF_INET ? 0 : address.dualStack ? 1 : 2;
  return fds_[type == SOCK_STREAM ? 0 : 1][kind];
}

int Probe::Open(const Address& address, int type) {
  int fd = socket(address.family(), type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int off = 0;
  // A filter that drops every packet: nothing can connect to the probe while
  // it listens, nor queue a datagram on it while it is bound.
  sock_filter dropAll[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog program = {1, dropAll};
  if ((address.dualStack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
      setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool Probe::Unbind(int* fd, int type) {
  // A port bound by bind(0) is let go when the socket goes from listening to
  // closed; a UDP socket lets it go on any disconnect.
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if ((type == SOCK_STREAM && listen(*fd, 0) != 0) || connect(*fd, &unspec, sizeof unspec) != 0) {
    close(*fd);  // lets the port go too
    *fd = -1;
    return false;
  }
  return true;
}

int Probe::Check(const Address& address, int type, uint16_t port, uint32_t ephemeralLow, uint32_t ephemeralHigh) {
  // Below 1024 a bind may need privilege, which bind(0) never asks for.
  if (unsupported_ || port < 1024 || port < ephemeralLow || port > ephemeralHigh) return kCannot;
  int& fd = Slot(address, type);
  if (fd < 0 && (fd = Open(address, type)) < 0) return kCannot;
  const uint32_t range = static_cast<uint32_t>(port) << 16 | port;
  if (setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) != 0) {
    if (errno == ENOPROTOOPT) unsupported_ = true;
    close(fd);
    fd = -1;
    return kCannot;
  }
  sockaddr_storage any = address.storage;
  SetPort(&any, 0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&any), address.length) != 0) {
    // EADDRINUSE: no port of [port, port] is free. Anything else (no such
    // address, no memory) the check with a socket of its own reports; this
    // socket goes, so a failed batch leaves nothing open.
    if (errno == EADDRINUSE) return EADDRINUSE;
    close(fd);
    fd = -1;
    return kCannot;
  }
  sockaddr_storage bound;
  socklen_t length = sizeof bound;
  const bool named = getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0;
  if (!Unbind(&fd, type)) return kCannot;
  // Another port: ip_local_port_range changed since the batch read it, and
  // the kernel ignored a range outside its own.
  return named && PortOf(bound) == port ? 0 : kCannot;
}

}  // namespace portalloc
