// Between JS values and the batch types. TypeScript has validated every value;
// what arrives malformed here is a bug in portalloc, reported as an Error.
#pragma once

#include <napi.h>

#include "batch.h"

namespace portalloc {

// Reads a request as binding.ts packs it: (fields: Uint32Array, host,
// exclude?: Uint8Array, ownedBlocks?: Uint8Array), the fields in the order of
// convert.cc's Field. One typed array instead of a dozen property reads: the
// crossing is most of a small batch's cost above the kernel's. False with a
// pending JS error when the request is malformed. borrow: the bitmaps point
// into the typed arrays (a batch run before the call returns) instead of copies.
bool ReadRequest(const Napi::CallbackInfo& info, BatchRequest* request, bool borrow);

// { ports } on success; { errno, syscall, port, found } or { exhausted, found }
// otherwise. Holds are added by the caller.
Napi::Object WriteResult(Napi::Env env, const BatchResult& result);

Napi::Array ToArray(Napi::Env env, const std::vector<int>& values);

}  // namespace portalloc
