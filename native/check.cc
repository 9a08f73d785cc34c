#include "check.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"

namespace portalloc {
namespace {

// The kernel work of one check. A TIME_WAIT port passes (SO_REUSEADDR, as
// libuv sets it); a port listened on or bound without SO_REUSEADDR on any
// address the check covers fails with EADDRINUSE, at bind or at listen.
int Check(Address address, uint16_t port, bool ipv6Only, const char** syscall) {
  *syscall = "socket";
  int fd = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && errno == EAFNOSUPPORT && address.dualStack) {
    // No IPv6 in this process: every IPv4 address is what "every address" means.
    FallBackToIpv4(&address);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return errno;
  const int on = 1;
  const int v6only = ipv6Only && !address.dualStack ? 1 : 0;
  int error = 0;
  *syscall = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) error = errno;
  if (error == 0 && address.family() == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) {
    error = errno;
  }
  if (error == 0) {
    *syscall = "bind";
    sockaddr_storage s = address.storage;
    SetPort(&s, port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&s), address.length) != 0) error = errno;
  }
  if (error == 0) {
    *syscall = "listen";
    if (listen(fd, 1) != 0) error = errno;
  }
  close(fd);
  return error;
}

}  // namespace

Napi::Value CheckListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Address address;
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean() ||
      !ParseAddress(info[0].As<Napi::String>().Utf8Value().c_str(), &address)) {
    Napi::TypeError::New(env, "portalloc: checkListen(host, port, ipv6Only) got bad arguments")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // An explicit '::' with ipv6Only is IPv6 only; without it, dual stack as Node does.
  bool ipv6Only = info[2].As<Napi::Boolean>().Value();
  if (ipv6Only && info[0].As<Napi::String>().Utf8Value() == "::") address.dualStack = false;
  const char* syscall = "bind";
  int error = Check(address, static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()), ipv6Only, &syscall);
  Napi::Object object = Napi::Object::New(env);
  object.Set("errno", Napi::Number::New(env, error));
  object.Set("syscall", Napi::String::New(env, syscall));
  return object;
}

}  // namespace portalloc
