#include "coordinate.h"

namespace portalloc {

bool ReadCoordination(const Napi::Object& object, Coordination* out) {
  out->enabled = object.Get("coordinate").ToBoolean().Value();
  if (!out->enabled) return true;
  Napi::Value owned = object.Get("ownedBlocks");
  Napi::Value budget = object.Get("claimBudget");
  Napi::Value continueAt = object.Get("continueAt");
  if (continueAt.IsNumber()) out->continueAt = continueAt.As<Napi::Number>().Uint32Value();
  if (!owned.IsTypedArray() || owned.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      owned.As<Napi::Uint8Array>().ByteLength() != kBlocks / 8 || !budget.IsNumber()) {
    Napi::TypeError::New(object.Env(), "portalloc: native request coordination fields are malformed")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array bitmap = owned.As<Napi::Uint8Array>();
  out->owned.assign(bitmap.Data(), bitmap.Data() + bitmap.ByteLength());
  out->budget = budget.As<Napi::Number>().Uint32Value();
  return true;
}

}  // namespace portalloc
