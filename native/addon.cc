// Registers the native functions; each lives in the file of its concern.
#include <napi.h>

#include "allocate.h"
#include "check.h"
#include "floor.h"
#include "timewait.h"
#include "hold.h"
#include "inspect.h"

namespace portalloc {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<Registry>(new Registry());
  exports.Set("allocate", Napi::Function::New(env, Allocate, "allocate"));
  exports.Set("closeProbe", Napi::Function::New(env, CloseProbe, "closeProbe"));
  exports.Set("allocateAsync", Napi::Function::New(env, AllocateAsync, "allocateAsync"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("share", Napi::Function::New(env, Share, "share"));
  Napi::Value (*checkFree)(const Napi::CallbackInfo&) = CheckFree;  // (batch.h has the C++ one)
  exports.Set("checkFree", Napi::Function::New(env, checkFree, "checkFree"));
  exports.Set("lookup", Napi::Function::New(env, Lookup, "lookup"));
  exports.Set("timeWait", Napi::Function::New(env, TimeWait, "timeWait"));
  exports.Set("timeWaitAsync", Napi::Function::New(env, TimeWaitAsync, "timeWaitAsync"));
  exports.Set("socketPorts", Napi::Function::New(env, SocketPorts, "socketPorts"));
  exports.Set("checkListen", Napi::Function::New(env, CheckListen, "checkListen"));
  RegisterBenchFloor(env, exports);  // benchmark only (bench/)
  return exports;
}

}  // namespace
}  // namespace portalloc

Napi::Object InitPortalloc(Napi::Env env, Napi::Object exports) { return portalloc::Init(env, exports); }

NODE_API_MODULE(portalloc, InitPortalloc)
