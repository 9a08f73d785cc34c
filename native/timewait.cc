#include "timewait.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

namespace portalloc {
namespace {

// The three sockets of one reservation; whatever is open is closed on scope exit.
struct Trio {
  int listener = -1, client = -1, accepted = -1;
  ~Trio() {
    // The accepted (server) side closes first: it sends the first FIN, so it is
    // the side that ends in TIME_WAIT, on the listener's port.
    if (accepted >= 0) close(accepted);
    if (client >= 0) close(client);
    if (listener >= 0) close(listener);
  }
};

// The connection whose server side will end in TIME_WAIT; 0 or an errno.
int Connect(const Address& address, uint16_t port, Trio* trio, const char** syscall) {
  sockaddr_storage s = address.storage;
  SetPort(&s, port);
  *syscall = "socket";
  trio->listener = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (trio->listener < 0) return errno;
  *syscall = "bind";
  if (bind(trio->listener, reinterpret_cast<sockaddr*>(&s), address.length) != 0) return errno;
  // The accepted socket inherits SO_REUSEADDR, and so does the TIME_WAIT it
  // leaves: without it, a SO_REUSEADDR server on [::] could not take the port.
  const int on = 1;
  *syscall = "setsockopt";
  if (setsockopt(trio->listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return errno;
  *syscall = "listen";
  if (listen(trio->listener, 1) != 0) return errno;
  *syscall = "socket";
  trio->client = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (trio->client < 0) return errno;
  *syscall = "connect";
  if (connect(trio->client, reinterpret_cast<sockaddr*>(&s), address.length) != 0) return errno;
  *syscall = "accept";
  trio->accepted = accept4(trio->listener, nullptr, nullptr, SOCK_CLOEXEC);
  return trio->accepted < 0 ? errno : 0;
}

}  // namespace

int PutInTimeWait(const Address& address, uint16_t port, const char** syscall) {
  {
    Trio trio;
    const int error = Connect(address, port, &trio, syscall);
    if (error != 0) return error;
  }
  // Kept? A bind without SO_REUSEADDR must fail now.
  Address local = address;
  const int fd = OpenSocket(&local, SOCK_STREAM);
  if (fd < 0) {
    *syscall = "socket";
    return errno;
  }
  const bool kept = BindPort(fd, local, port) != 0 && errno == EADDRINUSE;
  close(fd);
  if (kept) return 0;
  *syscall = "timewait";
  return ENOSPC;
}

}  // namespace portalloc
