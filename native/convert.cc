#include "convert.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "claims.h"

namespace portalloc {
// The order of the packed fields (binding.ts, packRequest).
enum Field : uint32_t {
  kCount, kProtocol, kRangeFrom, kRangeTo, kStart, kEphemeralLow, kEphemeralHigh,
  kKernelBudget, kThreads, kFlags, kClaimBudget, kContinueAt, kFields
};
enum Flag : uint32_t { kHold = 1, kShared = 2, kCoordinate = 4 };

bool ReadRequest(const Napi::CallbackInfo& info, BatchRequest* request, bool borrow) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[0].As<Napi::Uint32Array>().ElementLength() != kFields || !info[1].IsString()) {
    Napi::TypeError::New(env, "portalloc: native request is not (fields, host, exclude, ownedBlocks)").ThrowAsJavaScriptException();
    return false;
  }
  const uint32_t* field = info[0].As<Napi::Uint32Array>().Data();
  request->count = field[kCount];
  request->protocol = static_cast<int>(field[kProtocol]);
  request->rangeFrom = field[kRangeFrom];
  request->rangeTo = field[kRangeTo];
  request->start = field[kStart];
  request->ephemeralLow = field[kEphemeralLow];
  request->ephemeralHigh = field[kEphemeralHigh];
  request->kernelBudget = field[kKernelBudget];
  request->threads = field[kThreads];
  request->hold = (field[kFlags] & kHold) != 0;
  const char* probe = std::getenv("PORTALLOC_PROBE");  // (here, on the JavaScript thread: never beside a setenv)
  request->probeOff = probe != nullptr && std::strcmp(probe, "0") == 0;
  request->shared = (field[kFlags] & kShared) != 0;
  if (request->protocol < kTcp || request->protocol > kBoth || request->rangeFrom > request->rangeTo || request->rangeTo > 65535 ||
      request->ephemeralLow == 0 || request->ephemeralLow > request->ephemeralHigh || request->ephemeralHigh > 65535) {
    Napi::RangeError::New(env, "portalloc: native request out of range").ThrowAsJavaScriptException();
    return false;
  }
  char host[INET6_ADDRSTRLEN + 1];  // an IP literal or '' (longer: not an address)
  size_t length = 0;
  if (napi_get_value_string_utf8(env, info[1], host, sizeof host, &length) != napi_ok || length + 1 >= sizeof host ||
      !ParseAddress(host, &request->address)) {
    Napi::TypeError::New(env, "portalloc: native request host is not an IP address").ThrowAsJavaScriptException();
    return false;
  }
  if (info[2].IsTypedArray()) {
    Napi::Uint8Array bitmap = info[2].As<Napi::Uint8Array>();
    if (bitmap.TypedArrayType() != napi_uint8_array || bitmap.ByteLength() != 65536 / 8) {
      Napi::RangeError::New(env, "portalloc: exclude bitmap has the wrong size").ThrowAsJavaScriptException();
      return false;
    }
    if (borrow) {
      request->exclude.Borrow(bitmap.Data());
    } else {
      request->exclude.Copy(bitmap.Data(), bitmap.ByteLength());
    }
  }
  Coordination& coordination = request->coordination;
  coordination.enabled = (field[kFlags] & kCoordinate) != 0;
  if (!coordination.enabled) return true;
  coordination.budget = field[kClaimBudget];
  coordination.continueAt = field[kContinueAt];
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[3].As<Napi::Uint8Array>().ByteLength() != kBlocks / 8) {
    Napi::TypeError::New(env, "portalloc: native request ownedBlocks is malformed").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array owned = info[3].As<Napi::Uint8Array>();
  if (borrow) {
    coordination.owned.Borrow(owned.Data());
  } else {
    coordination.owned.Copy(owned.Data(), owned.ByteLength());
  }
  return true;
}

Napi::Array ToArray(Napi::Env env, const std::vector<int>& values) {
  Napi::Array array = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) array.Set(i, Napi::Number::New(env, values[i]));
  return array;
}

Napi::Object WriteResult(Napi::Env env, const BatchResult& result) {
  Napi::Object object = Napi::Object::New(env);
  if (result.error != 0) {
    object.Set("errno", Napi::Number::New(env, result.error));
    object.Set("syscall", Napi::String::New(env, result.syscall));
    object.Set("port", Napi::Number::New(env, result.errorPort));
    return object;
  }
  if (result.exhausted) {
    object.Set("exhausted", Napi::Boolean::New(env, true));
    object.Set("found", Napi::Number::New(env, result.ports.size()));
    return object;
  }
  object.Set("ports", ToArray(env, result.ports));
  return object;
}

}  // namespace portalloc
