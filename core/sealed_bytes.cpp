#include "core/sealed_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace hawker {
namespace {

/// Memfds open in the process (every SealedBytes that has one).
std::atomic<size_t> open_memfds{0};

/// A memfd costs a descriptor, which connections need too: at most a quarter of the soft
/// RLIMIT_NOFILE is spent on memfds; past that, sealed bytes stay in memory.
size_t memfd_budget() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return 4096;
  }
  return static_cast<size_t>(limit.rlim_cur / 4);
}

/// A memfd holding `pieces` one after another, sealed and mapped read-only; false (and nothing
/// left open) on any failure.
bool seal_into_memfd(std::span<const std::span<const uint8_t>> pieces, size_t size, int& fd_out,
                     const uint8_t*& data_out) {
  int fd = memfd_create("hawker-media", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    return false;
  }
  for (std::span<const uint8_t> bytes : pieces) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        ::close(fd);
        return false;
      }
      done += static_cast<size_t>(n);
    }
  }
  // Sealed, the file can never change under a sendfile or a reader, whoever holds the fd.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    ::close(fd);
    return false;
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    ::close(fd);
    return false;
  }
  fd_out = fd;
  data_out = static_cast<const uint8_t*>(map);
  return true;
}

}  // namespace

std::shared_ptr<const SealedBytes> SealedBytes::copy_of(std::span<const uint8_t> bytes) {
  return concat({&bytes, 1});
}

std::shared_ptr<const SealedBytes> SealedBytes::concat(
    std::span<const std::span<const uint8_t>> pieces) {
  std::shared_ptr<SealedBytes> out(new SealedBytes);
  for (std::span<const uint8_t> piece : pieces) {
    out->size_ += piece.size();
  }
  if (out->size_ > 0) {
    if (open_memfds.fetch_add(1) < memfd_budget() &&
        seal_into_memfd(pieces, out->size_, out->fd_, out->data_)) {
      return out;
    }
    open_memfds.fetch_sub(1);
  }
  out->memory_.reserve(out->size_);
  for (std::span<const uint8_t> piece : pieces) {
    out->memory_.insert(out->memory_.end(), piece.begin(), piece.end());
  }
  out->data_ = out->memory_.data();
  return out;
}

SealedBytes::~SealedBytes() {
  if (fd_ >= 0) {
    munmap(const_cast<uint8_t*>(data_), size_);
    ::close(fd_);
    open_memfds.fetch_sub(1);
  }
}

}  // namespace hawker
