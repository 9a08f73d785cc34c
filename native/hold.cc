#include "hold.h"

#include "batch.h"

namespace portalloc {

struct HoldState {
  std::vector<int> fds;
  Registry* registry = nullptr;  // null once the environment is gone

  void Close() {
    CloseAll(&fds);
    if (registry != nullptr) registry->Remove(this);
    registry = nullptr;
  }
};

Registry::~Registry() {
  for (HoldState* hold : live_) {
    CloseAll(&hold->fds);
    hold->registry = nullptr;  // a finalizer that runs later only frees memory
  }
}

Napi::Value WrapHold(Napi::Env env, std::vector<int> fds) {
  auto* hold = new HoldState{std::move(fds), env.GetInstanceData<Registry>()};
  if (hold->registry != nullptr) hold->registry->Add(hold);
  return Napi::External<HoldState>::New(env, hold, [](Napi::Env, HoldState* state) {
    state->Close();
    delete state;
  });
}

namespace {

HoldState* GetHold(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "portalloc: not a hold").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<HoldState>>().Data();
}

}  // namespace

Napi::Value Release(const Napi::CallbackInfo& info) {
  HoldState* hold = GetHold(info);
  if (hold != nullptr) hold->Close();
  return info.Env().Undefined();
}

Napi::Value Share(const Napi::CallbackInfo& info) {
  HoldState* hold = GetHold(info);
  if (hold == nullptr) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), ShareAll(hold->fds));
}

}  // namespace portalloc
