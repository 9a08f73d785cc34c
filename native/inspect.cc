#include "inspect.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sockets.h"

namespace portalloc {
namespace {

#if defined(__linux__) && defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
int PidfdOpen(int pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdGetfd(int pidfd, int fd) { return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0)); }
#else
int PidfdOpen(int) { return -1; }
int PidfdGetfd(int, int) { return -1; }
#endif

}  // namespace

Napi::Value SocketPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array found = Napi::Array::New(env);
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "portalloc: socketPorts(pid, fds) got bad arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int pidfd = PidfdOpen(info[0].As<Napi::Number>().Int32Value());
  if (pidfd < 0) return found;
  Napi::Array fds = info[1].As<Napi::Array>();
  uint32_t n = 0;
  for (uint32_t i = 0; i < fds.Length(); ++i) {
    int remote = fds.Get(i).As<Napi::Number>().Int32Value();
    int fd = PidfdGetfd(pidfd, remote);
    if (fd < 0) continue;
    sockaddr_storage address;
    socklen_t length = sizeof address;
    int type = 0;
    socklen_t typeLength = sizeof type;
    bool ok = getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
              getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typeLength) == 0 &&
              (address.ss_family == AF_INET || address.ss_family == AF_INET6) &&
              (type == SOCK_STREAM || type == SOCK_DGRAM);
    close(fd);
    if (!ok) continue;
    const int port = PortOf(address);
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("fd", remote);
    entry.Set("port", port);
    entry.Set("protocol", type == SOCK_STREAM ? "tcp" : "udp");
    found.Set(n++, entry);
  }
  close(pidfd);
  return found;
}

}  // namespace portalloc
