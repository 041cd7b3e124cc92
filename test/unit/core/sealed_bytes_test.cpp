#include "core/sealed_bytes.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

using namespace hawker;

TEST_CASE("sealed bytes hold a copy in a memfd that nobody can change") {
  std::vector<uint8_t> source(100'000);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 7);
  auto sealed = SealedBytes::copy_of(source);
  REQUIRE(sealed);
  REQUIRE(sealed->size() == source.size());
  CHECK(std::memcmp(sealed->data(), source.data(), source.size()) == 0);
  source[0] = 99;  // a copy, not a view of the caller's buffer
  CHECK(sealed->data()[0] == 0);

  REQUIRE(sealed->fd() >= 0);
  int seals = fcntl(sealed->fd(), F_GET_SEALS);
  CHECK((seals & F_SEAL_WRITE) != 0);
  CHECK((seals & F_SEAL_SHRINK) != 0);
  CHECK((seals & F_SEAL_SEAL) != 0);
  // What sendfile reads is the same bytes.
  std::vector<uint8_t> read_back(source.size());
  CHECK(pread(sealed->fd(), read_back.data(), read_back.size(), 0) ==
        static_cast<ssize_t>(read_back.size()));
  CHECK(std::memcmp(read_back.data(), sealed->data(), read_back.size()) == 0);
  uint8_t byte = 1;
  CHECK(pwrite(sealed->fd(), &byte, 1, 0) == -1);
  CHECK(errno == EPERM);
}

TEST_CASE("pieces are sealed one after another into one memfd") {
  std::vector<uint8_t> a(70'000, 1);
  std::vector<uint8_t> b;
  std::vector<uint8_t> c(5, 3);
  const std::span<const uint8_t> pieces[] = {a, b, c};
  auto sealed = SealedBytes::concat(pieces);
  REQUIRE(sealed->size() == a.size() + c.size());
  REQUIRE(sealed->fd() >= 0);
  std::vector<uint8_t> read_back(sealed->size());
  CHECK(pread(sealed->fd(), read_back.data(), read_back.size(), 0) ==
        static_cast<ssize_t>(read_back.size()));
  std::vector<uint8_t> expected = a;
  expected.insert(expected.end(), c.begin(), c.end());
  CHECK(read_back == expected);
  CHECK(std::memcmp(sealed->data(), expected.data(), expected.size()) == 0);
  CHECK(SealedBytes::concat({})->empty());
}

TEST_CASE("empty sealed bytes need no memfd") {
  auto sealed = SealedBytes::copy_of({});
  REQUIRE(sealed);
  CHECK(sealed->empty());
  CHECK(sealed->fd() == -1);
  CHECK(sealed->view().empty());
}

TEST_CASE("memfds take at most a quarter of the descriptor limit; the rest stay in memory") {
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = 64;  // a budget of 16 memfds
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<std::shared_ptr<const SealedBytes>> held;
  const std::vector<uint8_t> bytes(1000, 5);
  for (int i = 0; i < 40; ++i) held.push_back(SealedBytes::copy_of(bytes));
  size_t with_fd = 0;
  for (const auto& sealed : held) {
    with_fd += sealed->fd() >= 0 ? 1 : 0;
    CHECK(sealed->size() == bytes.size());
    CHECK(sealed->data()[999] == 5);
  }
  CHECK(with_fd <= 16);
  CHECK(with_fd > 0);
  // Out of budget, pieces are still joined in memory.
  const std::vector<uint8_t> tail{1, 2, 3};
  const std::span<const uint8_t> pieces[] = {bytes, tail};
  auto joined = SealedBytes::concat(pieces);
  CHECK(joined->fd() == -1);
  REQUIRE(joined->size() == 1003);
  CHECK(joined->data()[999] == 5);
  CHECK(joined->data()[1002] == 3);
  // Freed memfds give their slots back.
  held.clear();
  CHECK(SealedBytes::copy_of(bytes)->fd() >= 0);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);
}
