// BENCHMARK ONLY: benchFloor(count, hold), the kernel's floor for bench/.
#pragma once

#include <napi.h>

namespace portalloc {

// Adds exports.benchFloor; see floor.cc.
void RegisterBenchFloor(Napi::Env env, Napi::Object exports);

}  // namespace portalloc
