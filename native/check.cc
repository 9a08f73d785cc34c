#include "check.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ledger.h"

namespace portalloc {

int CheckListen(Address address, uint16_t port, bool ipv6Only, const char** syscall) {
  if (ledger::Held(port, kTcp)) {
    *syscall = "bind";
    return EADDRINUSE;
  }
  if (ipv6Only && address.family() == AF_INET6) address.dualStack = false;
  *syscall = "socket";
  const int fd = OpenSocket(&address, SOCK_STREAM);
  if (fd < 0) return errno;
  const int on = 1;
  const int v6only = ipv6Only ? 1 : 0;
  int error = 0;
  *syscall = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) error = errno;
  if (error == 0 && address.family() == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) {
    error = errno;
  }
  if (error == 0) {
    *syscall = "bind";
    if (BindPort(fd, address, port) != 0) error = errno;
  }
  if (error == 0) {
    *syscall = "listen";
    if (listen(fd, 1) != 0) error = errno;
  }
  close(fd);
  return error;
}

}  // namespace portalloc
