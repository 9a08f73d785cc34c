// Cross-process coordination of plain allocations (pure C++, no N-API). A process that hands out a
// port of a block of 32 ports claims the block by binding an abstract unix
// socket named after it ("\0portalloc/v1/block/<n>"); other processes skip
// blocks they cannot claim. Abstract names live in the network namespace, touch
// no TCP or UDP port, and vanish with the process: the kernel keeps the books.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace portalloc {

constexpr uint32_t kBlockShift = 5;  // 32 ports per block
constexpr uint32_t kBlocks = 65536 >> kBlockShift;

// A bitmap from JavaScript: borrowed for a call that runs on the JS thread
// (the typed array outlives it), copied for a batch that runs on another.
struct Bits {
  const uint8_t* data = nullptr;
  std::vector<uint8_t> copy;

  Bits() = default;
  Bits(const Bits& other) : copy(other.copy) { data = copy.empty() ? other.data : copy.data(); }
  Bits(Bits&& other) noexcept : data(other.data), copy(std::move(other.copy)) {}
  Bits& operator=(const Bits&) = delete;
  Bits& operator=(Bits&&) = delete;

  void Borrow(const uint8_t* bits) { data = bits; }
  void Copy(const uint8_t* bits, size_t bytes) {
    copy.assign(bits, bits + bytes);
    data = copy.data();
  }
  bool empty() const { return data == nullptr; }
  uint8_t operator[](size_t i) const { return data[i]; }
};

// What a batch needs to coordinate: set by ReadCoordination.
struct Coordination {
  bool enabled = false;
  Bits owned;  // a bitmap of kBlocks bits: blocks this process already claims
  uint32_t budget = 0;         // how many new claims (fds) the batch may open
  // Kernel's range only: scan on from this port instead of asking bind(0), so
  // successive batches of this process fill the blocks it claims (0: bind(0)).
  uint32_t continueAt = 0;
};

// Binds the abstract name of `block`: a bound, never-listening unix socket,
// close-on-exec. -1 with errno set (EADDRINUSE: claimed elsewhere) on failure.
int ClaimBlock(uint32_t block);

// The claims of one batch. Whatever it still owns when destroyed is closed.
class Claims {
 public:
  explicit Claims(const Coordination& coordination);
  ~Claims();
  Claims(const Claims&) = delete;
  Claims& operator=(const Claims&) = delete;

  // Whether the batch may hand out `port`: its block is this process's (claimed
  // now or before) or could not be claimed for want of fds (coordination gives
  // way). False when another process claims the block.
  bool Admit(uint32_t port);
  // The blocks claimed by this batch and their sockets, in the same order; the
  // caller owns the sockets afterwards.
  void Take(std::vector<int>* blocks, std::vector<int>* fds);

 private:
  enum State : uint8_t { kUnknown = 0, kMine, kForeign, kUnclaimed };
  const Coordination& coordination_;
  std::vector<uint8_t> state_;
  std::vector<int> blocks_;
  std::vector<int> fds_;
  bool givenWay_ = false;
};

}  // namespace portalloc
