// Registers the native functions; each lives in the file of its concern
// (api.cc for every N-API entry point, inspect.cc for pidfd).
#include <napi.h>

#include "api.h"
#include "inspect.h"

namespace portalloc {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace api;
  SetUp(env);
  const struct {
    const char* name;
    Napi::Value (*function)(const Napi::CallbackInfo&);
  } functions[] = {
      {"allocate", Allocate},         {"allocateAsync", AllocateAsync}, {"release", Release},
      {"detach", Detach},             {"share", Share},                 {"closeProbe", CloseProbe},
      {"checkFree", CheckFree},       {"checkListen", CheckListen},     {"tryPort", TryPort},
      {"lend", Lend},                 {"ledgerClock", LedgerClock},         {"dropPort", DropPort},          
      {"releaseClaims", ReleaseClaims}, {"claimCount", ClaimCount},     {"lookup", Lookup},
      {"socketPorts", SocketPorts},   {"oldestFirst", OldestFirst},
  };
  for (const auto& entry : functions) exports.Set(entry.name, Napi::Function::New(env, entry.function, entry.name));
  exports.Set("fields", Fields(env));
  return exports;
}

}  // namespace
}  // namespace portalloc

Napi::Object InitPortalloc(Napi::Env env, Napi::Object exports) { return portalloc::Init(env, exports); }

NODE_API_MODULE(portalloc, InitPortalloc)
