// Between JS values and the batch types. TypeScript has validated every value;
// what arrives malformed here is a bug in portalloc, reported as an Error.
#pragma once

#include <napi.h>

#include "batch.h"

namespace portalloc {

// Reads { count, host, protocol, rangeFrom, rangeTo, start, ephemeralLow,
// ephemeralHigh, kernelBudget, exclude?, hold, shared }. False with a pending
// JS error when the request is malformed.
bool ReadRequest(const Napi::Value& value, BatchRequest* request);

// { ports } on success; { errno, syscall, port, found } or { exhausted, found }
// otherwise. Holds are added by the caller.
Napi::Object WriteResult(Napi::Env env, const BatchResult& result);

Napi::Array ToArray(Napi::Env env, const std::vector<int>& values);

}  // namespace portalloc
