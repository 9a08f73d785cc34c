// N-API side of cross-process coordination (see claims.h).
#pragma once

#include <napi.h>

#include "claims.h"

namespace portalloc {

// Reads { coordinate, ownedBlocks, claimBudget } of a request; false with a
// pending JS error when malformed.
bool ReadCoordination(const Napi::Object& object, Coordination* out);

}  // namespace portalloc
