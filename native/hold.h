// Held sockets. A hold is an External that owns its fds: they are closed by
// release(), by the garbage collector's finalizer, or when the environment
// (main thread or worker) shuts down, whichever comes first.
#pragma once

#include <napi.h>

#include <unordered_set>
#include <vector>

#include "probe.h"

namespace portalloc {

struct HoldState;

// Per-environment instance data: the holds still open in this environment,
// and the probe that this environment's synchronous allocate calls share
// (probe.h: one unbound TCP socket per kind of address, opened on
// first use, closed with the environment).
class Registry {
 public:
  Probe probe;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();  // environment teardown: close every hold still open

  void Add(HoldState* hold) { live_.insert(hold); }
  void Remove(HoldState* hold) { live_.erase(hold); }

 private:
  std::unordered_set<HoldState*> live_;
};

// Wraps fds that a batch bound and kept into a hold owned by JavaScript.
Napi::Value WrapHold(Napi::Env env, std::vector<int> fds);

// release(hold): closes every socket of the hold; idempotent.
Napi::Value Release(const Napi::CallbackInfo& info);
// share(hold): SO_REUSEADDR on every socket; returns 0 or an errno.
Napi::Value Share(const Napi::CallbackInfo& info);

}  // namespace portalloc
