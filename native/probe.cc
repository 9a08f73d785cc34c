#include "probe.h"

#include <errno.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <unistd.h>

namespace portalloc {

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51  // linux/in.h, Linux 6.3
#endif

void Probe::Close() {
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  if (tester_ >= 0) close(tester_);
  tester_ = -1;
}

int Probe::Tester() {
  if (tester_ < 0) tester_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return tester_;
}

int& Probe::Slot(const Address& address) {
  return fds_[address.family() == AF_INET ? 0 : address.dualStack ? 1 : 2];
}

int Probe::Open(const Address& address) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;  // (out of fds, say: the batch's own socket() reports it)
  const int off = 0;
  // A filter that drops every packet: nothing can connect to the probe while it listens.
  sock_filter dropAll[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog program = {1, dropAll};
  if ((address.dualStack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
      setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
    unsupported_ = true;  // (a sandbox that refuses socket filters, say)
    close(fd);
    return -1;
  }
  return fd;
}

bool Probe::Unbind(int* fd) {
  // A port bound by bind(0) is let go when the socket goes from listening to closed.
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if (listen(*fd, 0) != 0 || connect(*fd, &unspec, sizeof unspec) != 0) {
    close(*fd);  // lets the port go too
    *fd = -1;
    return false;
  }
  return true;
}

int Probe::Check(const Address& address, uint16_t port, uint32_t ephemeralLow, uint32_t ephemeralHigh) {
  // Below 1024 a bind may need privilege, which bind(0) never asks for.
  if (unsupported_ || port < 1024 || port < ephemeralLow || port > ephemeralHigh) return kCannot;
  int& fd = Slot(address);
  if (fd < 0 && (fd = Open(address)) < 0) return kCannot;
  const uint32_t range = static_cast<uint32_t>(port) << 16 | port;
  if (setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) != 0) {
    unsupported_ = true;  // ENOPROTOOPT before Linux 6.3; a sandbox may say EINVAL or EPERM
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
  if (!Unbind(&fd)) return kCannot;
  // Another port: ip_local_port_range changed since the batch read it, and
  // the kernel ignored a range outside its own.
  return named && PortOf(bound) == port ? 0 : kCannot;
}

}  // namespace portalloc
