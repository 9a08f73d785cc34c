#include "convert.h"

#include <string>

#include "coordinate.h"

namespace portalloc {
namespace {

bool ReadUint(const Napi::Object& object, const char* key, uint32_t* out) {
  Napi::Value value = object.Get(key);
  if (!value.IsNumber()) {
    Napi::Error::New(object.Env(), std::string("portalloc: native request field ") + key + " is not a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = value.As<Napi::Number>().Uint32Value();
  return true;
}

}  // namespace

bool ReadRequest(const Napi::Value& value, BatchRequest* request) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) {
    Napi::TypeError::New(env, "portalloc: native request is not an object").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Object object = value.As<Napi::Object>();
  uint32_t protocol = 0;
  if (!ReadUint(object, "count", &request->count) || !ReadUint(object, "protocol", &protocol) ||
      !ReadUint(object, "rangeFrom", &request->rangeFrom) || !ReadUint(object, "rangeTo", &request->rangeTo) ||
      !ReadUint(object, "start", &request->start) || !ReadUint(object, "ephemeralLow", &request->ephemeralLow) ||
      !ReadUint(object, "ephemeralHigh", &request->ephemeralHigh) ||
      !ReadUint(object, "kernelBudget", &request->kernelBudget)) {
    return false;
  }
  request->protocol = static_cast<int>(protocol);
  if (protocol < kTcp || protocol > kBoth || request->rangeFrom > request->rangeTo || request->rangeTo > 65535 ||
      request->ephemeralLow == 0 || request->ephemeralLow > request->ephemeralHigh || request->ephemeralHigh > 65535) {
    Napi::RangeError::New(env, "portalloc: native request out of range").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Value host = object.Get("host");
  if (!host.IsString() || !ParseAddress(host.As<Napi::String>().Utf8Value().c_str(), &request->address)) {
    Napi::TypeError::New(env, "portalloc: native request host is not an IP address").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Value exclude = object.Get("exclude");
  if (exclude.IsTypedArray()) {
    Napi::Uint8Array bitmap = exclude.As<Napi::Uint8Array>();
    if (bitmap.ByteLength() != 65536 / 8) {
      Napi::RangeError::New(env, "portalloc: exclude bitmap has the wrong size").ThrowAsJavaScriptException();
      return false;
    }
    request->exclude.assign(bitmap.Data(), bitmap.Data() + bitmap.ByteLength());
  }
  Napi::Value threads = object.Get("threads");  // optional: 1 unless given
  request->threads = threads.IsNumber() ? threads.As<Napi::Number>().Uint32Value() : 1;
  request->hold = object.Get("hold").ToBoolean().Value();
  request->shared = object.Get("shared").ToBoolean().Value();
  return ReadCoordination(object, &request->coordination);
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
