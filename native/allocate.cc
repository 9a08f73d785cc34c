#include "allocate.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cerrno>

#include "convert.h"
#include "hold.h"

namespace portalloc {
namespace {

// The ports alone when that is all there is (most calls: one object fewer to
// build), the port itself for one; otherwise WriteResult's object, with the
// hold and claims it kept.
Napi::Value Deliver(Napi::Env env, BatchResult* result) {
  if (result->error == 0 && !result->exhausted && result->fds.empty() && result->claimFds.empty()) {
    if (result->ports.size() == 1) return Napi::Number::New(env, result->ports[0]);
    return ToArray(env, result->ports);
  }
  Napi::Object object = WriteResult(env, *result);
  if (!result->fds.empty()) {
    object.Set("fds", ToArray(env, result->fds));
    object.Set("hold", WrapHold(env, std::move(result->fds)));
    result->fds.clear();
  }
  if (!result->claimFds.empty()) {
    // One hold per claimed block, so JavaScript can let each expire on its own.
    Napi::Array holds = Napi::Array::New(env, result->claimFds.size());
    for (uint32_t i = 0; i < result->claimFds.size(); ++i) holds.Set(i, WrapHold(env, {result->claimFds[i]}));
    object.Set("claimBlocks", ToArray(env, result->claimBlocks));
    object.Set("claimHolds", holds);
    result->claimFds.clear();
  }
  return object;
}

class BatchWorker : public Napi::AsyncWorker {
 public:
  // The batch begins when the call is made (batch.h, BeginBatch), not when a
  // thread of the pool gets to it.
  BatchWorker(Napi::Env env, BatchRequest request, BatchRunner run, const char* name)
      : Napi::AsyncWorker(env, name), request_(std::move(request)), run_(run), deferred_(env) {
    request_.ticket = BeginBatch();
  }
  // Sockets a batch kept but never delivered (the environment went away first).
  ~BatchWorker() override {
    CloseAll(&result_.fds);
    CloseAll(&result_.claimFds);
    End();
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = run_(request_); }
  // Ends the batch once the result is on its way: JavaScript records the ports
  // before any other call of this thread can begin.
  void OnOK() override {
    deferred_.Resolve(Deliver(Env(), &result_));
    End();
  }
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(error.Value());
    End();
  }

 private:
  void End() {
    if (ended_) return;
    ended_ = true;
    EndBatch(result_);
  }

  BatchRequest request_;
  BatchRunner run_;
  BatchResult result_;
  Napi::Promise::Deferred deferred_;
  bool ended_ = false;
};

// A batch on this thread, between BeginBatch and EndBatch.
BatchResult RunTracked(BatchRunner run, BatchRequest* request) {
  request->ticket = BeginBatch();
  BatchResult result = run(*request);
  EndBatch(result);
  return result;
}

}  // namespace

Napi::Value RunSync(const Napi::CallbackInfo& info, BatchRunner run) {
  BatchRequest request;
  if (!ReadRequest(info, &request, true)) return info.Env().Undefined();
  BatchResult result = RunTracked(run, &request);
  return Deliver(info.Env(), &result);
}

Napi::Value RunAsync(const Napi::CallbackInfo& info, BatchRunner run, const char* name) {
  BatchRequest request;
  if (!ReadRequest(info, &request, false)) return info.Env().Undefined();
  auto* worker = new BatchWorker(info.Env(), std::move(request), run, name);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Allocate(const Napi::CallbackInfo& info) {
  BatchRequest request;
  if (!ReadRequest(info, &request, true)) return info.Env().Undefined();
  // This thread's probe: a synchronous allocate opens no socket of its own (probe.h).
  auto* registry = info.Env().GetInstanceData<Registry>();
  if (registry != nullptr) request.probe = &registry->probe;
  BatchResult result = RunTracked(RunBatch, &request);
  return Deliver(info.Env(), &result);
}

Napi::Value CloseProbe(const Napi::CallbackInfo& info) {
  auto* registry = info.Env().GetInstanceData<Registry>();
  if (registry != nullptr) registry->probe.Close();
  return info.Env().Undefined();
}

Napi::Value AllocateAsync(const Napi::CallbackInfo& info) { return RunAsync(info, RunBatch, "portalloc:batch"); }

Napi::Value CheckFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Address address;
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !ParseAddress(info[0].As<Napi::String>().Utf8Value().c_str(), &address)) {
    Napi::TypeError::New(env, "portalloc: checkFree(host, protocol, port) got bad arguments")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* syscall = "bind";
  int error = portalloc::CheckFree(address, info[1].As<Napi::Number>().Int32Value(),
                                   info[2].As<Napi::Number>().Uint32Value(), &syscall);
  Napi::Object object = Napi::Object::New(env);
  object.Set("errno", Napi::Number::New(env, error));
  object.Set("syscall", Napi::String::New(env, syscall));
  return object;
}

Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "portalloc: lookup(host) got bad arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string host = info[0].As<Napi::String>().Utf8Value();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  errno = 0;
  int status = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  const int error = errno;  // before any other call can change it
  Napi::Object object = Napi::Object::New(env);
  if (status != 0) {
    object.Set("eai", Napi::Number::New(env, status));
    object.Set("message", Napi::String::New(env, gai_strerror(status)));
    // EAI_SYSTEM: the errno says why. Out of fds, glibc reports EAI_NONAME (it could
    // open neither /etc/hosts nor a DNS socket): the name may well exist, say so.
    const bool outOfFds = error == EMFILE || error == ENFILE;
    if ((status == EAI_SYSTEM && error != 0) || outOfFds) object.Set("errno", Napi::Number::New(env, error));
    return object;
  }
  Napi::Array addresses = Napi::Array::New(env);
  uint32_t n = 0;
  for (addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    char text[INET6_ADDRSTRLEN] = "";
    const void* raw = entry->ai_family == AF_INET6
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(entry->ai_addr)->sin6_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ai_addr)->sin_addr);
    if (inet_ntop(entry->ai_family, raw, text, sizeof text) != nullptr) addresses.Set(n++, text);
  }
  freeaddrinfo(list);
  object.Set("addresses", addresses);
  return object;
}

}  // namespace portalloc
