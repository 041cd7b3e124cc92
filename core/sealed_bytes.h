#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace hawker {

/// Immutable bytes held in an anonymous memory file (memfd), sealed against any change and
/// mapped read-only. A server can then hand them to the kernel with sendfile(2) instead of
/// copying them into every socket, as nginx does with a file on tmpfs; readers in the process
/// see ordinary memory. Where a memfd cannot be had (an old kernel, out of descriptors), or when
/// memfds already hold a quarter of the process's descriptor limit (RLIMIT_NOFILE, which
/// connections need too), the bytes are kept in ordinary memory and fd() is -1, so callers
/// always have the bytes.
///
/// Shared between threads as `std::shared_ptr<const SealedBytes>`: nothing about it changes
/// after copy_of() returns.
class SealedBytes {
 public:
  static std::shared_ptr<const SealedBytes> copy_of(std::span<const uint8_t> bytes);
  /// `pieces` one after another, copied once (a segment from its parts).
  static std::shared_ptr<const SealedBytes> concat(
      std::span<const std::span<const uint8_t>> pieces);
  ~SealedBytes();
  SealedBytes(const SealedBytes&) = delete;
  SealedBytes& operator=(const SealedBytes&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  /// The sealed memfd for sendfile(2) (offsets 0 to size()), or -1 when held in memory.
  int fd() const { return fd_; }

 private:
  SealedBytes() = default;

  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  /// The bytes when there is no memfd.
  std::vector<uint8_t> memory_;
};

using SharedSealedBytes = std::shared_ptr<const SealedBytes>;

}  // namespace hawker
