#include "claims.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace portalloc {
namespace {

// The abstract address of a block's claim.
socklen_t BlockAddress(uint32_t block, sockaddr_un* address) {
  *address = sockaddr_un();
  address->sun_family = AF_UNIX;
  // sun_path[0] stays '\0': an abstract name, not a file.
  int n = snprintf(address->sun_path + 1, sizeof address->sun_path - 1, "portalloc/v1/block/%u", block);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

}  // namespace

// A bound, never-listening unix socket: connect() to it is refused, so the
// claim exposes nothing. -1 with errno set on failure, nothing left open.
int ClaimBlock(uint32_t block) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un address;
  socklen_t length = BlockAddress(block, &address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

Claims::Claims(const Coordination& coordination) : coordination_(coordination), state_(kBlocks, kUnknown) {}

Claims::~Claims() {
  for (int fd : fds_) close(fd);
}

bool Claims::Admit(uint32_t port) {
  const uint32_t block = port >> kBlockShift;
  uint8_t& state = state_[block];
  if (state == kUnknown) {
    const auto& owned = coordination_.owned;
    if (!owned.empty() && ((owned[block >> 3] >> (block & 7)) & 1)) {
      state = kMine;
    } else if (givenWay_ || fds_.size() >= coordination_.budget) {
      state = kUnclaimed;  // no fd to spare: hand the port out unclaimed
    } else {
      int fd = ClaimBlock(block);
      if (fd >= 0) {
        fds_.push_back(fd);
        blocks_.push_back(static_cast<int>(block));
        state = kMine;
      } else if (errno == EADDRINUSE) {
        state = kForeign;
      } else {
        givenWay_ = true;  // EMFILE, ENFILE, ENOBUFS...: coordination steps aside
        state = kUnclaimed;
      }
    }
  }
  return state != kForeign;
}

void Claims::Take(std::vector<int>* blocks, std::vector<int>* fds) {
  *blocks = std::move(blocks_);
  *fds = std::move(fds_);
  blocks_.clear();
  fds_.clear();
}

}  // namespace portalloc
