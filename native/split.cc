// A large batch of the kernel's range on two threads: a port costs the kernel
// ~4 us with the probe (allocate), ~8 us with a socket of its own (reserve),
// and two CPUs check two at once. The halves start half a range apart and
// share a quota, so a half whose thread gets less CPU simply finds fewer; the
// ledger keeps them off each other's ports (a port one half has in flight is
// not another's to acquire), so nothing else is needed to keep them apart.
#include <pthread.h>

#include "batch.h"
#include "candidates.h"

namespace portalloc {
namespace {

// Below this many ports a second thread costs more than it saves.
constexpr uint32_t kSplitMin = 2048;

struct Half {
  BatchRequest request;
  Batch* batch = nullptr;
  bool ok = false;
};

void* FindHalf(void* half) {
  auto* h = static_cast<Half*>(half);
  h->ok = h->batch->Find();
  return nullptr;
}

bool Splits(const BatchRequest& request) {
  if (request.threads == 1 || request.count < kSplitMin || request.rangeFrom != 0 || request.protocol == kBoth) return false;
  if (request.check == Check::kTimeWait) return false;
  return request.threads == 2 ? UsableCpus() >= 2 : SecondCpuFree();
}

}  // namespace

// False when the batch is not for two threads (the caller runs it whole).
bool SplitBatch(const BatchRequest& request, BatchResult* out) {
  if (!Splits(request)) return false;
  std::atomic<int64_t> quota{static_cast<int64_t>(request.count)};
  const uint32_t low = request.ephemeralLow, high = request.ephemeralHigh;
  const uint32_t start = request.start != 0 ? request.start : RandomPreferredPort(low, high);
  Half first{request}, second{request};
  first.request.quota = second.request.quota = &quota;
  first.request.start = start;
  second.request.start = Across(start, low, high);
  second.request.probe = nullptr;  // (the request's probe belongs to this thread)
  Batch mine(first.request), theirs(second.request);
  first.batch = &mine;
  second.batch = &theirs;
  pthread_t helper;
  if (pthread_create(&helper, nullptr, FindHalf, &second) != 0) return false;
  FindHalf(&first);
  pthread_join(helper, nullptr);
  if (!first.ok || !second.ok) {
    *out = std::move(first.ok ? theirs.result() : mine.result());  // (both halves drop their ports)
    return true;
  }
  const size_t found = mine.found() + theirs.found();
  if (found < request.count) {
    *out = BatchResult();
    out->exhausted = true;
    out->found = static_cast<uint32_t>(found);
    out->refused = mine.result().refused + theirs.result().refused;
    out->refusedErrno = mine.result().refusedErrno != 0 ? mine.result().refusedErrno : theirs.result().refusedErrno;
    return true;
  }
  *out = mine.Settle();
  BatchResult other = theirs.Settle();
  out->ports.insert(out->ports.end(), other.ports.begin(), other.ports.end());
  out->fds.insert(out->fds.end(), other.fds.begin(), other.fds.end());
  return true;
}

}  // namespace portalloc
