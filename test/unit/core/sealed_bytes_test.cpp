#include "core/sealed_bytes.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

TEST_CASE("empty sealed bytes need no memfd") {
  auto sealed = SealedBytes::copy_of({});
  REQUIRE(sealed);
  CHECK(sealed->empty());
  CHECK(sealed->fd() == -1);
  CHECK(sealed->view().empty());
}
