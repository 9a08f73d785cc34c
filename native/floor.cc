// BENCHMARK ONLY: the kernel's floor for bench/, built as its own addon
// (build/Release/portalloc_bench.node) that the published package does not load.
//
// benchFloor(count, hold, probe?) runs the naive loop of portalloc's socket-per-port path in
// C++, with no N-API crossing per port and no bookkeeping: a dual-stack
// socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC), setsockopt(IPV6_V6ONLY = 0),
// bind([::]:0), getsockname(), and close(). With hold = false each socket is
// closed at once (ports may repeat: the kernel hands a closed port out again);
// with hold = true the whole batch stays open and is closed at the end (the
// ports are distinct). With probe = true it runs allocate's own kernel work
// instead (probe.h): one dual-stack socket checks ports of the ephemeral range
// of bind(0)'s parity, in turn from a random one, until `count` were free.
// It returns { ns, ports }: the nanoseconds of the loop, closes included,
// measured in C++, and the ports it got.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include <napi.h>

#include "probe.h"
#include "sockets.h"

namespace portalloc {
namespace {

Napi::Array ToArray(Napi::Env env, const std::vector<int>& values) {
  Napi::Array array = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) array.Set(i, Napi::Number::New(env, values[i]));
  return array;
}

int64_t NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// One port: -1 with errno and *syscall set on failure (the socket is closed).
int BindOne(int* fdOut, const char** syscall) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *syscall = "socket";
    return -1;
  }
  const int off = 0;
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_any;
  sockaddr_in6 bound{};
  socklen_t length = sizeof bound;
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
    *syscall = "setsockopt";
  } else if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
    *syscall = "bind";
  } else if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    *syscall = "getsockname";
  } else {
    *fdOut = fd;
    return ntohs(bound.sin6_port);
  }
  int error = errno;
  close(fd);
  errno = error;
  return -1;
}

// The probe's loop: ports of [32768, 60999]'s odd half by default (the
// kernel's range is read as the batch does, from /proc).
Napi::Value ProbeFloor(Napi::Env env, uint32_t count) {
  uint32_t low = 32768, high = 60999;
  if (FILE* file = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "re")) {
    if (std::fscanf(file, "%u %u", &low, &high) != 2) low = 32768, high = 60999;
    std::fclose(file);
  }
  Address address;
  ParseAddress("", &address);
  Probe probe;
  std::vector<int> ports;
  ports.reserve(count);
  const uint32_t half = (high - low + 1) / 2;
  uint32_t offset = static_cast<uint32_t>(NowNs()) % half;
  const int64_t start = NowNs();
  for (uint32_t tried = 0; ports.size() < count && tried < half; ++tried, offset = (offset + 1) % half) {
    const uint32_t port = low + 1 + 2 * offset;
    const int state = probe.Check(address, static_cast<uint16_t>(port), low, high);
    if (state == 0) ports.push_back(static_cast<int>(port));
    if (state == Probe::kCannot) break;
  }
  probe.Close();
  const int64_t elapsed = NowNs() - start;
  if (ports.size() < count) {
    Napi::Error::New(env, "portalloc: benchFloor: the probe found too few ports (IP_LOCAL_PORT_RANGE needs Linux 6.3)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("ns", Napi::Number::New(env, static_cast<double>(elapsed)));
  result.Set("ports", ToArray(env, ports));
  return result;
}

Napi::Value BenchFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "portalloc: benchFloor(count, hold) got bad arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t count = info[0].As<Napi::Number>().Uint32Value();
  const bool hold = info[1].As<Napi::Boolean>().Value();
  if (info.Length() > 2 && info[2].ToBoolean().Value()) return ProbeFloor(env, count);
  std::vector<int> ports(count);
  std::vector<int> fds;
  if (hold) fds.reserve(count);

  const char* syscall = nullptr;
  int error = 0;
  const int64_t start = NowNs();
  for (uint32_t i = 0; i < count; ++i) {
    int fd = -1;
    int port = BindOne(&fd, &syscall);
    if (port < 0) {
      error = errno;
      break;
    }
    ports[i] = port;
    if (hold) {
      fds.push_back(fd);
    } else {
      close(fd);
    }
  }
  CloseAll(&fds);
  const int64_t elapsed = NowNs() - start;

  if (error != 0) {
    Napi::Error failure = Napi::Error::New(env, std::string("portalloc: benchFloor: ") + syscall + ": " + strerror(error));
    failure.Set("errno", Napi::Number::New(env, error));
    failure.Set("syscall", Napi::String::New(env, syscall));
    failure.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("ns", Napi::Number::New(env, static_cast<double>(elapsed)));
  result.Set("ports", ToArray(env, ports));
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("benchFloor", Napi::Function::New(env, BenchFloor, "benchFloor"));
  return exports;
}

}  // namespace
}  // namespace portalloc

Napi::Object InitBenchFloor(Napi::Env env, Napi::Object exports) { return portalloc::Init(env, exports); }

NODE_API_MODULE(portalloc_bench, InitBenchFloor)
