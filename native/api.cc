#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>

#include <unordered_set>
#include <vector>

#include "batch.h"
#include "check.h"
#include "claims.h"
#include "ledger.h"
#include "probe.h"

namespace portalloc {
namespace api {
namespace {

// ---- The request layout: binding.ts packs with Fields(), so the order lives here alone.

enum Field : uint32_t {
  kCount, kProtocol, kCheck, kRangeFrom, kRangeTo, kStart, kEphemeralLow, kEphemeralHigh,
  kThreads, kFlags, kWindowMs, kFieldCount
};
constexpr const char* kFieldNames[kFieldCount] = {"count", "protocol", "check", "rangeFrom", "rangeTo", "start",
                                                  "ephemeralLow", "ephemeralHigh", "threads", "flags", "windowMs"};
enum Flag : uint32_t { kShared = 1, kCoordinate = 2, kProbeOff = 4 };

// ---- Holds: an External that owns its sockets, type-tagged so a wrong object is a TypeError.

constexpr napi_type_tag kHoldTag = {0x706f7274616c6c6full, 0x686f6c6420763031ull};  // "portalloc" "hold v01"

struct Registry;

struct Hold {
  std::vector<int> fds;
  std::vector<int> ports;
  int protocol = kTcp;
  uint64_t windowMs = 0;
  Registry* registry = nullptr;  // null once the environment is gone

  // Closes (or, detaching, forgets) the sockets and gives the ports.
  void End(bool closeFds);
};

struct Registry {
  Probe probe;  // this environment's synchronous calls share it (probe.h)
  std::unordered_set<Hold*> live;
  ~Registry() {  // the environment ends: every hold still open closes
    for (Hold* hold : live) {
      hold->registry = nullptr;
      hold->End(true);
    }
  }
};

void Hold::End(bool closeFds) {
  if (closeFds) CloseAll(&fds);
  fds.clear();
  const uint64_t deadline = ledger::NowMs() + windowMs;
  for (int port : ports) ledger::Unhold(static_cast<uint32_t>(port), protocol, deadline);
  claims::Touch(ports);
  ports.clear();
  if (registry != nullptr) registry->live.erase(this);
  registry = nullptr;
}

Napi::Value WrapHold(Napi::Env env, BatchResult* result, const BatchRequest& request) {
  auto* hold = new Hold{std::move(result->fds), result->ports, request.protocol, request.windowMs, env.GetInstanceData<Registry>()};
  result->fds.clear();
  if (hold->registry != nullptr) hold->registry->live.insert(hold);
  auto external = Napi::External<Hold>::New(env, hold, [](Napi::Env, Hold* h) {
    h->End(true);  // collected: as release()
    delete h;
  });
  napi_type_tag_object(env, external, &kHoldTag);
  return external;
}

Hold* GetHold(const Napi::CallbackInfo& info) {
  bool tagged = false;
  if (info.Length() < 1 || !info[0].IsExternal() || napi_check_object_type_tag(info.Env(), info[0], &kHoldTag, &tagged) != napi_ok ||
      !tagged) {
    Napi::TypeError::New(info.Env(), "portalloc: not a hold").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<Hold>>().Data();
}

// ---- Reading a request.

bool Malformed(Napi::Env env, const char* what) {
  Napi::TypeError::New(env, std::string("portalloc: native request: ") + what).ThrowAsJavaScriptException();
  return false;
}

bool ReadHost(Napi::Env env, Napi::Value value, Address* address) {
  char host[128];
  size_t length = 0;
  if (!value.IsString() || napi_get_value_string_utf8(env, value, host, sizeof host, &length) != napi_ok ||
      length + 1 >= sizeof host || !ParseAddress(host, address)) {
    return Malformed(env, "host is not an IP address");
  }
  return true;
}

bool ReadFields(const uint32_t* field, BatchRequest* request) {
  request->count = field[kCount];
  request->protocol = static_cast<int>(field[kProtocol]);
  request->check = static_cast<Check>(field[kCheck]);
  request->rangeFrom = field[kRangeFrom];
  request->rangeTo = field[kRangeTo];
  request->start = field[kStart];
  request->ephemeralLow = field[kEphemeralLow];
  request->ephemeralHigh = field[kEphemeralHigh];
  request->threads = field[kThreads];
  request->shared = (field[kFlags] & kShared) != 0;
  request->coordinate = (field[kFlags] & kCoordinate) != 0;
  request->probeOff = (field[kFlags] & kProbeOff) != 0;
  request->windowMs = field[kWindowMs];
  return request->protocol >= kTcp && request->protocol <= kBoth && field[kCheck] <= 2 && request->rangeFrom <= request->rangeTo &&
         request->rangeTo <= 65535 && request->ephemeralLow != 0 && request->ephemeralLow <= request->ephemeralHigh &&
         request->ephemeralHigh <= 65535 && request->count >= 1 && request->count <= 65535;
}

// (fields: Uint32Array, host, exclude?: Uint8Array). borrow: the exclude
// bitmap points into the typed array (a batch run before the call returns).
bool ReadRequest(const Napi::CallbackInfo& info, BatchRequest* request, bool borrow) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[0].As<Napi::Uint32Array>().ElementLength() != kFieldCount) {
    return Malformed(env, "fields are not a Uint32Array of the addon's layout");
  }
  if (!ReadFields(info[0].As<Napi::Uint32Array>().Data(), request)) return Malformed(env, "a field is out of range");
  request->since = ledger::Clock();  // the call begins now, on this thread, whenever a pool thread runs it
  claims::SetWindow(request->windowMs);
  if (!ReadHost(env, info[1], &request->address)) return false;
  if (info[2].IsUndefined()) return true;
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[2].As<Napi::Uint8Array>().ByteLength() != 65536 / 8) {
    return Malformed(env, "exclude is not a bitmap of 65,536 bits");
  }
  Napi::Uint8Array bitmap = info[2].As<Napi::Uint8Array>();
  if (borrow) {
    request->exclude.Borrow(bitmap.Data());
  } else {
    request->exclude.Copy(bitmap.Data(), bitmap.ByteLength());
  }
  return true;
}

// ---- Results.

Napi::Array ToArray(Napi::Env env, const std::vector<int>& values) {
  Napi::Array array = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) array.Set(i, Napi::Number::New(env, values[i]));
  return array;
}

Napi::Value Failure(Napi::Env env, const BatchResult& result) {
  Napi::Object object = Napi::Object::New(env);
  if (result.error != 0) {
    object.Set("errno", result.error);
    object.Set("syscall", result.syscall);
    object.Set("port", result.errorPort);
  } else {
    object.Set("exhausted", true);
    object.Set("found", result.found);
    object.Set("refused", result.refused);
    object.Set("refusedErrno", result.refusedErrno);
  }
  return object;
}

// The port itself for one, the ports alone for a plain batch (most calls: one
// object fewer to build), { ports, fds, hold } for a reservation.
Napi::Value Deliver(Napi::Env env, BatchResult* result, const BatchRequest& request) {
  if (result->error != 0 || result->exhausted) return Failure(env, *result);
  if (request.check != Check::kHold) ledger::Delivered(result->ports, request.protocol);
  if (result->fds.empty()) {
    if (result->ports.size() == 1) return Napi::Number::New(env, result->ports[0]);
    return ToArray(env, result->ports);
  }
  Napi::Object object = Napi::Object::New(env);
  object.Set("ports", ToArray(env, result->ports));
  object.Set("fds", ToArray(env, result->fds));
  object.Set("hold", WrapHold(env, result, request));
  return object;
}

class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, BatchRequest request)
      : Napi::AsyncWorker(env, "portalloc:batch"), request_(std::move(request)), deferred_(env) {}
  // A reservation kept but never delivered (the environment went away first).
  ~BatchWorker() override {
    if (delivered_ || result_.fds.empty()) return;
    CloseAll(&result_.fds);
    for (int port : result_.ports) ledger::Unhold(static_cast<uint32_t>(port), request_.protocol, ledger::NowMs());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = RunBatch(request_); }
  void OnOK() override {
    delivered_ = true;
    deferred_.Resolve(Deliver(Env(), &result_, request_));
  }

 private:
  BatchRequest request_;
  BatchResult result_;
  Napi::Promise::Deferred deferred_;
  bool delivered_ = false;
};

Napi::Value Compat(Napi::Env env, int error, const char* syscall) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("errno", error);
  object.Set("syscall", syscall);
  return object;
}

// (host, ..., port at `at`, ...) of the checks; false with a pending TypeError.
bool ReadHostPort(const Napi::CallbackInfo& info, size_t arguments, size_t at, Address* address, uint16_t* port) {
  if (info.Length() < arguments || !info[at].IsNumber()) return Malformed(info.Env(), "expected (host, port, ...)");
  const uint32_t value = info[at].As<Napi::Number>().Uint32Value();
  if (value > 65535) return Malformed(info.Env(), "port out of range");
  *port = static_cast<uint16_t>(value);
  return ReadHost(info.Env(), info[0], address);
}

}  // namespace

void SetUp(Napi::Env env) { env.SetInstanceData<Registry>(new Registry()); }

Napi::Object Fields(Napi::Env env) {
  Napi::Object fields = Napi::Object::New(env);
  for (uint32_t i = 0; i < kFieldCount; ++i) fields.Set(kFieldNames[i], i);
  fields.Set("length", static_cast<uint32_t>(kFieldCount));
  fields.Set("shared", static_cast<uint32_t>(kShared));
  fields.Set("coordinate", static_cast<uint32_t>(kCoordinate));
  fields.Set("probeOff", static_cast<uint32_t>(kProbeOff));
  return fields;
}

Napi::Value Allocate(const Napi::CallbackInfo& info) {
  BatchRequest request;
  if (!ReadRequest(info, &request, true)) return info.Env().Undefined();
  request.probe = &info.Env().GetInstanceData<Registry>()->probe;
  BatchResult result = RunBatch(request);
  return Deliver(info.Env(), &result, request);
}

Napi::Value AllocateAsync(const Napi::CallbackInfo& info) {
  BatchRequest request;
  if (!ReadRequest(info, &request, false)) return info.Env().Undefined();
  auto* worker = new BatchWorker(info.Env(), std::move(request));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  if (Hold* hold = GetHold(info)) hold->End(true);
  return info.Env().Undefined();
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  if (Hold* hold = GetHold(info)) hold->End(false);
  return info.Env().Undefined();
}

Napi::Value Share(const Napi::CallbackInfo& info) {
  Hold* hold = GetHold(info);
  if (hold == nullptr) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), ShareAll(hold->fds));
}

Napi::Value CloseProbe(const Napi::CallbackInfo& info) {
  info.Env().GetInstanceData<Registry>()->probe.Close();
  return info.Env().Undefined();
}

Napi::Value CheckFree(const Napi::CallbackInfo& info) {
  Address address;
  uint16_t port;
  if (!ReadHostPort(info, 3, 2, &address, &port) || !info[1].IsNumber()) return info.Env().Undefined();
  const char* syscall = "bind";
  const int error = portalloc::CheckFree(address, info[1].As<Napi::Number>().Int32Value(), port, &syscall);
  return Compat(info.Env(), error, syscall);
}

Napi::Value CheckListen(const Napi::CallbackInfo& info) {
  Address address;
  uint16_t port;
  if (!ReadHostPort(info, 3, 1, &address, &port)) return info.Env().Undefined();
  const char* syscall = "bind";
  const int error = portalloc::CheckListen(address, port, info[2].ToBoolean().Value(), &syscall);
  return Compat(info.Env(), error, syscall);
}

namespace {
// tryPort's claim argument.
constexpr uint32_t kClaimPort = 1, kClaimBlock = 2;

// A random drop-in port claimed by its block, as a batch of the kernel's range
// claims it (Batch::Admit): false when another process has the block, or the
// port alone. (Its claims stay when the check fails: blocks expire.)
bool BlockAdmits(uint32_t port, int tester) {
  uint32_t foreignPorts = 0;
  const claims::Answer answer = claims::Block(port >> claims::kBlockShift, tester, &foreignPorts);
  if (answer == claims::kForeign) return false;
  if (answer == claims::kUnclaimed) return !claims::PortClaimed(port, tester);
  return !((foreignPorts >> (port & ((1u << claims::kBlockShift) - 1))) & 1);
}
}  // namespace

Napi::Value TryPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Address address;
  uint16_t port;
  if (!ReadHostPort(info, 5, 1, &address, &port) || !info[4].IsNumber()) return env.Undefined();
  const uint32_t claim = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  // The pass: kCompat for a numbered port (it answers as its original), kStrict for a random one
  // (listen(0) would not give a port another caller just got), kReuse for a search's last resort.
  const uint32_t asked = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Uint32Value() : static_cast<uint32_t>(ledger::kCompat);
  if (asked != ledger::kStrict && asked != ledger::kReuse && asked != ledger::kCompat) return Malformed(env, "tryPort: pass must be strict, reuse or compat"), env.Undefined();
  const ledger::Pass pass = static_cast<ledger::Pass>(asked);
  const uint32_t lender = info.Length() > 6 && info[6].IsNumber() ? info[6].As<Napi::Number>().Uint32Value() : 0;
  ledger::Prior prior;
  if (!ledger::Acquire(port, kTcp, pass, &prior, info[4].As<Napi::Number>().Uint32Value(), ledger::NowMs(), lender)) return Compat(env, EADDRINUSE, "bind");
  bool fresh = false;
  Probe& probe = env.GetInstanceData<Registry>()->probe;
  if ((claim == kClaimPort && claims::Port(port, probe.Tester(), &fresh) == claims::kForeign) ||
      (claim == kClaimBlock && !BlockAdmits(port, probe.Tester()))) {
    ledger::Drop(port, kTcp, prior);
    return Compat(env, EADDRINUSE, "claim");  // (busy for another process's claim: a search may give way)
  }
  const char* syscall = "bind";
  const int error = portalloc::CheckListen(address, port, info[2].ToBoolean().Value(), &syscall);
  if (error != 0) {
    ledger::Drop(port, kTcp, prior);
    if (fresh) claims::Unport(port);
  }
  Napi::Object object = Compat(env, error, syscall).As<Napi::Object>();
  object.Set("prior", Napi::BigInt::New(env, prior.tcp));
  object.Set("fresh", fresh);
  return object;
}

Napi::Value Lend(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return Malformed(info.Env(), "lend(port, windowMs)"), info.Env().Undefined();
  const uint32_t port = info[0].As<Napi::Number>().Uint32Value();
  const uint32_t lender = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  ledger::Lend(port, ledger::NowMs() + info[1].As<Napi::Number>().Int64Value(), lender);
  claims::Touch({static_cast<int>(port)});
  return info.Env().Undefined();
}

Napi::Value DropPort(const Napi::CallbackInfo& info) {
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBigInt()) return Malformed(info.Env(), "dropPort(port, prior, fresh)"), info.Env().Undefined();
  const uint32_t port = info[0].As<Napi::Number>().Uint32Value();
  bool lossless;
  ledger::Prior prior;
  prior.tcp = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  ledger::Drop(port, kTcp, prior);
  if (info[2].ToBoolean().Value()) claims::Unport(port);
  return info.Env().Undefined();
}

Napi::Value ReleaseClaims(const Napi::CallbackInfo& info) {
  claims::ReleaseAll();
  return info.Env().Undefined();
}

Napi::Value ClaimCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), claims::Count()); }

Napi::Value LedgerClock(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ledger::Clock()); }

Napi::Value OldestFirst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return Malformed(env, "oldestFirst(low, high)"), env.Undefined();
  const uint32_t low = info[0].As<Napi::Number>().Uint32Value(), high = info[1].As<Napi::Number>().Uint32Value();
  if (low < 1 || low > high || high > 65535) return Malformed(env, "oldestFirst: a range of ports"), env.Undefined();
  const std::vector<uint32_t> ports = ledger::OldestFirst(low, high, kTcp);
  Napi::Array array = Napi::Array::New(env, ports.size());
  for (uint32_t i = 0; i < ports.size(); ++i) array.Set(i, ports[i]);
  return array;
}

Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return Malformed(env, "lookup(host)"), env.Undefined();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  errno = 0;
  const int status = getaddrinfo(info[0].As<Napi::String>().Utf8Value().c_str(), nullptr, &hints, &list);
  const int error = errno;  // before any other call can change it
  Napi::Object object = Napi::Object::New(env);
  if (status != 0) {
    object.Set("eai", status);
    object.Set("message", gai_strerror(status));
    // EAI_SYSTEM: the errno says why. Out of fds, glibc reports EAI_NONAME (it could
    // open neither /etc/hosts nor a DNS socket): the name may well exist, say so.
    if ((status == EAI_SYSTEM && error != 0) || error == EMFILE || error == ENFILE) object.Set("errno", error);
    return object;
  }
  Napi::Array addresses = Napi::Array::New(env);
  uint32_t n = 0;
  for (addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = "";
    const void* raw = entry->ai_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr)
                                                   : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr);
    if (inet_ntop(entry->ai_family, raw, text, sizeof text) != nullptr) addresses.Set(n++, text);
  }
  freeaddrinfo(list);
  object.Set("addresses", addresses);
  return object;
}

}  // namespace api
}  // namespace portalloc
